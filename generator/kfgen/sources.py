"""Upstream sources: where they are, how they are vendored, and the lock that pins them.

A source root is a directory in a remote repository at a ref (a kustomization root), or a file of a
release. Both are looked up in `vendor/`, then in source caches laid out as `kustomize localize`
names remote roots (`<host>/<owner>/<repo>/<ref>/<path>`, and
`<host>/<owner>/<repo>/releases/download/<tag>/<file>`), then on the network.

Vendoring copies the closure of every root the enabled components use into `vendor/`, and rewrites
the remote references inside upstream kustomizations to local paths: remote directories become
relative paths into `vendor/`, and remote files are copied next to the kustomization that names them,
because kustomize's default load restrictor only reads files below a kustomization's own root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from .buildcache import digest_contents, read_files
from .errors import SourceError
from .refs import ReleaseFile, RemoteDir, parse_remote
from .yamlio import Manifest, dump, load_plain

LOCK_FILE = "sources.lock.json"
TREE_ENTRY = "vendor/"  # the lock entry that digests the whole vendor tree
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
LOCALIZED_DIR = "localized-files"


class SourceCache:
    """Directories that hold upstream sources laid out as `kustomize localize` names them."""

    def __init__(self, directories: list[Path], fetch_dir: Path | None = None):
        self.directories = [d for d in directories if d.is_dir()]
        self.searched = directories
        self.fetch_dir = fetch_dir

    def find(self, source: RemoteDir | ReleaseFile) -> tuple[Path, Path]:
        """Return (the repo root at its ref or the release file, the path asked for)."""
        if isinstance(source, ReleaseFile):
            for directory in self.directories:
                candidate = directory / source.relpath
                if candidate.is_file():
                    return candidate, candidate
        else:
            for directory in self.directories:
                root = directory / source.host / source.owner / source.repo / source.ref
                if (root / source.path).is_dir():
                    return root, root / source.path
        return self._fetch(source)

    def _fetch(self, source: RemoteDir | ReleaseFile) -> tuple[Path, Path]:
        searched = ", ".join(str(d) for d in self.searched) or "none"
        if self.fetch_dir is None:
            raise SourceError(f"{source.url} is in no source cache (searched: {searched})")
        target = self.fetch_dir / source.relpath
        try:
            if isinstance(source, ReleaseFile):
                # Imported here: it costs 20 ms (http.client, email), and sources are almost always in a cache.
                import urllib.request

                target.parent.mkdir(parents=True, exist_ok=True)
                with urllib.request.urlopen(source.url, timeout=60) as response:
                    target.write_bytes(response.read())
                return target, target
            root = self.fetch_dir / source.host / source.owner / source.repo / source.ref
            if not root.is_dir():
                root.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(
                    ["git", "clone", "--quiet", "--depth", "1", "--branch", source.ref,
                     f"https://{source.host}/{source.owner}/{source.repo}.git", str(root)],
                    check=True, capture_output=True, timeout=600,
                )
            return root, root / source.path
        except (OSError, subprocess.SubprocessError) as err:
            raise SourceError(f"{source.url} is in no source cache (searched: {searched}) and fetching it failed: {err}") from None


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _local_references(kustomization: Manifest) -> list[tuple[str, str]]:
    """Every (field, reference) a kustomization makes to another file, directory or remote root."""
    refs: list[tuple[str, str]] = []
    for field in ("resources", "bases", "components", "crds", "configurations", "generators", "transformers", "validators"):
        for entry in kustomization.get(field) or []:
            if isinstance(entry, str) and "\n" not in entry:
                refs.append((field, entry))
    for field in ("patches", "patchesJson6902", "replacements"):
        for entry in kustomization.get(field) or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                refs.append((field, entry["path"]))
    for entry in kustomization.get("patchesStrategicMerge") or []:
        if isinstance(entry, str) and "\n" not in entry:
            refs.append(("patchesStrategicMerge", entry))
    for field in ("configMapGenerator", "secretGenerator"):
        for generator in kustomization.get(field) or []:
            for item in generator.get("files") or []:
                refs.append((field, item.split("=", 1)[-1]))
            for item in generator.get("envs") or []:
                refs.append((field, item))
            if generator.get("env"):
                refs.append((field, generator["env"]))
    openapi = kustomization.get("openapi") or {}
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        refs.append(("openapi", openapi["path"]))
    return refs


@dataclass
class LockEntry:
    """One vendored source: what it is and a digest of what was vendored from it."""

    source: str
    ref: str
    sha256: str
    files: int


class Vendorer:
    """Copies the closure of source roots from the caches into a vendor tree."""

    def __init__(self, cache: SourceCache, vendor_dir: Path):
        self.cache = cache
        self.vendor_dir = vendor_dir
        self.copied: dict[PurePosixPath, tuple[str, str]] = {}  # path in vendor -> (source, ref)
        self.visited: set[PurePosixPath] = set()

    def vendor_root(self, source: RemoteDir) -> PurePosixPath:
        """Vendor a remote kustomization root; return its path relative to the vendor tree."""
        repo_root, directory = self.cache.find(source)
        repo_rel = PurePosixPath(source.host, source.owner, source.repo, source.ref)
        if find_kustomization(directory) is None:
            raise SourceError(f"{source.url} has no kustomization file")
        self._walk(repo_root, repo_rel, directory, source.lock_key)
        return source.relpath

    def _target(self, repo_root: Path, repo_rel: PurePosixPath, path: Path) -> PurePosixPath:
        resolved = Path(os.path.normpath(path))
        try:
            inside = resolved.relative_to(Path(os.path.normpath(repo_root)))
        except ValueError:
            raise SourceError(f"{path} points outside its repository {repo_rel}") from None
        return repo_rel / PurePosixPath(inside.as_posix())

    def _copy(self, source: Path, target: PurePosixPath, repo_key: tuple[str, str], data: bytes | None = None) -> None:
        if target in self.copied:
            return
        destination = self.vendor_dir / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            shutil.copyfile(source, destination)
        else:
            destination.write_bytes(data)
        self.copied[target] = repo_key

    def _walk(self, repo_root: Path, repo_rel: PurePosixPath, directory: Path, repo_key: tuple[str, str]) -> None:
        target_dir = self._target(repo_root, repo_rel, directory)
        if target_dir in self.visited:
            return
        self.visited.add(target_dir)
        kustomization_file = find_kustomization(directory)
        if kustomization_file is None:
            raise SourceError(f"{directory} is referenced as a kustomization but has none")
        try:
            kustomization: Manifest = load_plain(kustomization_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise SourceError(f"cannot read {kustomization_file}: {err}") from None
        # Files beside a kustomization are often read indirectly (kustomizeconfig, params); take them all.
        for entry in sorted(directory.iterdir()):
            if entry.is_file() and entry != kustomization_file:
                self._copy(entry, target_dir / entry.name, repo_key)
        rewritten = False
        for field, reference in _local_references(kustomization):
            remote = parse_remote(reference)
            if remote is not None:
                local = self._vendor_remote(remote, target_dir)
                _replace_reference(kustomization, field, reference, local)
                rewritten = True
                continue
            path = directory / reference
            if path.is_dir():
                self._walk(repo_root, repo_rel, path, repo_key)
            elif path.is_file():
                self._copy(path, self._target(repo_root, repo_rel, path), repo_key)
            elif field in ("patchesStrategicMerge",):
                continue  # an inline patch, not a path
            else:
                raise SourceError(f"{kustomization_file}: {field} names {reference!r}, which does not exist")
        target_file = target_dir / kustomization_file.name
        if rewritten:
            self._copy(kustomization_file, target_file, repo_key, dump(kustomization).encode())
        else:
            self._copy(kustomization_file, target_file, repo_key)

    def _vendor_remote(self, remote: RemoteDir | ReleaseFile, referrer: PurePosixPath) -> str:
        if isinstance(remote, ReleaseFile):
            path, _ = self.cache.find(remote)
            local = PurePosixPath(LOCALIZED_DIR) / remote.relpath
            self._copy(path, referrer / local, remote.lock_key)
            return str(local)
        target = self.vendor_root(remote)
        return os.path.relpath(target, referrer)


def _replace_reference(kustomization: Manifest, field: str, old: str, new: str) -> None:
    entries = kustomization.get(field) or []
    for index, entry in enumerate(entries):
        if entry == old:
            entries[index] = new
        elif isinstance(entry, dict) and entry.get("path") == old:
            entry["path"] = new


def digest_tree(root: Path, files: list[PurePosixPath]) -> str:
    """sha256 over the sorted relative paths and contents of files below root."""
    return digest_contents((str(relative), (root / relative).read_bytes()) for relative in sorted(files))


def vendor(roots: list[RemoteDir], cache: SourceCache, vendor_dir: Path) -> list[LockEntry]:
    """Vendor the closure of roots into vendor_dir, all or nothing; return the lock entries."""
    vendor_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".vendor-", dir=vendor_dir.parent))
    try:
        vendorer = Vendorer(cache, staging)
        for root in sorted(set(roots)):
            vendorer.vendor_root(root)
        by_source: dict[tuple[str, str], list[PurePosixPath]] = {}
        for relative, key in vendorer.copied.items():
            by_source.setdefault(key, []).append(relative)
        entries = [LockEntry(source, ref, digest_tree(staging, files), len(files))
                   for (source, ref), files in sorted(by_source.items())]
        entries.append(LockEntry(TREE_ENTRY, "", digest_tree(staging, list(vendorer.copied)), len(vendorer.copied)))
        old = vendor_dir.with_name(vendor_dir.name + ".old")
        if vendor_dir.exists():
            vendor_dir.rename(old)
        staging.rename(vendor_dir)
        shutil.rmtree(old, ignore_errors=True)
        return entries
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_lock(path: Path, entries: list[LockEntry]) -> None:
    data = {"generator": "kfgen", "sources": [entry.__dict__ for entry in entries]}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_lock(path: Path) -> list[LockEntry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [LockEntry(**entry) for entry in data["sources"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SourceError(f"{path.name} is missing or unreadable ({err}); run `kfgen vendor`") from None


def verify_vendor(root: Path) -> None:
    """vendor/ must be exactly what the lock file records: a changed or partial vendor tree is refused."""
    entries = {entry.source: entry for entry in read_lock(root / LOCK_FILE)}
    vendor_dir = root / "vendor"
    if not vendor_dir.is_dir() or TREE_ENTRY not in entries:
        raise SourceError("vendor/ is missing; run `kfgen vendor`")
    if digest_contents(read_files(vendor_dir)) != entries[TREE_ENTRY].sha256:
        raise SourceError(f"vendor/ does not match {LOCK_FILE} (edited, partial or stale); run `kfgen vendor`")
