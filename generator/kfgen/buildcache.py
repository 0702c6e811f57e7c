"""A content-addressed cache of kustomize output, in .kfgen/cache/ (safe to delete at any time).

Each entry is keyed on a digest of everything that can change the output (the kustomization files
that go into it, the vendored sources' lock, the kustomize binary) and stores the output with its
own sha256, so that a truncated or edited entry is detected, dropped and rebuilt, never trusted.
The validated catalog and spec are kept here the same way (inputcache.py).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _hashlib import HASH

_MAGIC = b"# kfgen-cache sha256="


def read_files(root: Path) -> list[tuple[str, bytes]]:
    """Every file below root (symbolic links to files followed) as (relative POSIX name, contents), in
    name order. Overlays are digested on every check: os.walk takes half the time of Path.rglob."""
    found: list[tuple[tuple[str, ...], str]] = []
    for folder, _, names in os.walk(root):
        relative = os.path.relpath(folder, root)
        prefix = () if relative == "." else tuple(relative.split(os.sep))
        paths = ((name, os.path.join(folder, name)) for name in names)
        found.extend(((*prefix, name), path) for name, path in paths if os.path.isfile(path))
    files = []
    for parts, path in sorted(found):
        with open(path, "rb") as handle:
            files.append(("/".join(parts), handle.read()))
    return files


def digest_contents(files: Iterable[tuple[str, bytes]], folder: str | None = None) -> str:
    """sha256 over the relative names and contents of files given in name order (see read_files), after
    the name of their folder when one is given. Without it, this is the digest vendor.lock records."""
    digest = hashlib.sha256(b"" if folder is None else folder.encode() + b"\0")
    for relative, data in files:
        digest.update(relative.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def digest_files(*roots: Path) -> str:
    """sha256 over the relative names and contents of every file below roots, in a stable order."""
    return digest_text(*(digest_contents(read_files(root), root.name) for root in roots))


def digest_tree(digest: HASH, folder: Path, relative: str, skipped: frozenset[str] = frozenset(), excluded: Path | None = None) -> bool:
    """Add the name, kind and content of everything below folder, named from relative, to digest (leaving out
    the names in skipped and the path excluded); False when something below is neither a plain file nor a
    folder (a symbolic link, a socket), whose contents alone do not say what reading it finds."""
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name in skipped or (excluded is not None and entry.path == str(excluded)):
                continue
            name = f"{relative}/{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                digest.update(b"d\0" + name.encode() + b"\0")
                if not digest_tree(digest, Path(entry.path), name, skipped, excluded):
                    return False
            elif entry.is_file(follow_symlinks=False):
                with open(entry.path, "rb") as handle:
                    digest.update(b"f\0" + name.encode() + b"\0" + hashlib.sha256(handle.read()).digest())
            else:
                return False
    return True


def digest_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


class BuildCache:
    def __init__(self, directory: Path):
        self.directory = directory
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.yaml"

    def get(self, key: str) -> str | None:
        body = self.get_bytes(key)
        return None if body is None else body.decode("utf-8")

    def put(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def get_bytes(self, key: str) -> bytes | None:
        """The entry's body, or None when there is none or it does not match its sha256 (it is then removed)."""
        path = self._path(key)
        try:
            raw = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        header, _, body = raw.partition(b"\n")
        if header != _MAGIC + hashlib.sha256(body).hexdigest().encode():
            self.corrupt += 1
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return body

    def put_bytes(self, key: str, body: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as out:
            out.write(_MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
        os.replace(temporary, path)
