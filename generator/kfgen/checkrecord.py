"""Records of finished checks: a check whose every input is unchanged gets the last report back.

A record is keyed on a fingerprint of everything `kfgen check` reads: every file of the project
(except caches and tool folders), the spec, the kfgen code and the Python packages it runs on, the
tools it calls, its arguments and KFGEN_* settings. Files it reads from outside the project (the
GitOps controllers' CRDs in the source cache, the secrets operators' CRDs) are listed in the record
with their digests and compared again before the record is trusted. A record lives in the build
cache, which checks each entry's integrity; it is written only when the project did not change
while the check ran. This module imports nothing heavy: a warm check must not pay for the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .buildcache import BuildCache, digest_tree
from .data import DATA_FOLDERS, PACKAGE

# Folders that hold no input of a check: version control, caches, virtualenvs and tool binaries
# (the tools are fingerprinted by identity instead).
SKIPPED_FOLDERS = frozenset({".git", ".kfgen", ".venv", ".tools", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"})
TOOLS = ("kustomize", "kustomize-worker", "conftest", "yaml2json")
# kfgen's code, and its data folders (data.py): beside the package in a checkout, inside it when installed.
KFGEN_FOLDERS = (PACKAGE, *(folder for folder in DATA_FOLDERS if not folder.is_relative_to(PACKAGE)))


class Unrecordable(Exception):
    """The project holds something a fingerprint cannot vouch for (a symbolic link, a socket)."""


@dataclass(frozen=True)
class Record:
    exit_code: int
    stdout: str
    written: float  # seconds since the epoch


def _tool_identities(project_root: Path) -> list[str]:
    from .tools import find_tool, tool_identity

    return [f"{name}={tool_identity(path)}" for name in TOOLS if (path := find_tool(name, project_root, required=False))]


def _installed_packages() -> list[str]:
    """The distributions (with versions, in their folder names) Python imports from."""
    names = []
    for entry in sys.path:
        if entry.endswith("site-packages") and os.path.isdir(entry):
            names.extend(sorted(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info"))))
    return names


def fingerprint(project_root: Path, spec: Path, arguments: list[str], cache_dir: Path | None = None) -> str:
    """Everything a check's report depends on, short of the files outside the project it lists itself.
    cache_dir, the build cache, is left out wherever it is: the check writes to it."""
    digest = hashlib.sha256()
    settings = sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("KFGEN_"))
    digest.update(json.dumps([str(project_root), str(spec), arguments, settings, sys.version,
                              _installed_packages(), _tool_identities(project_root)]).encode())
    if not digest_tree(digest, project_root, "", SKIPPED_FOLDERS, cache_dir):
        raise Unrecordable(f"{project_root} holds something other than files and folders")
    if not spec.is_relative_to(project_root) and spec.is_file():
        digest.update(b"spec\0" + hashlib.sha256(spec.read_bytes()).digest())
    for folder in KFGEN_FOLDERS:
        if not folder.is_relative_to(project_root) and not digest_tree(digest, folder, str(folder), SKIPPED_FOLDERS):
            raise Unrecordable(f"{folder} holds something other than files and folders")
    return digest.hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class CheckRecords:
    """Records of one project's checks with one set of arguments, in the build cache."""

    def __init__(self, cache: BuildCache, project_root: Path, spec: Path, arguments: list[str]):
        self.cache = cache
        self.project_root = project_root
        self.spec = spec
        self.arguments = arguments
        self.key = self._key()

    def _key(self) -> str | None:
        try:
            return "check-record-" + fingerprint(self.project_root, self.spec, self.arguments, self.cache.directory.resolve())
        except (Unrecordable, OSError):
            return None

    def recall(self) -> Record | None:
        """The record of a check of exactly these inputs, if there is one and its outside files are unchanged."""
        stored = self.cache.get(self.key) if self.key else None
        if stored is None:
            return None
        data = json.loads(stored)
        if any(_file_digest(Path(path)) != digest for path, digest in data["outside"].items()):
            return None
        return Record(data["exit_code"], data["stdout"], data["written"])

    def remember(self, exit_code: int, stdout: str, outside: list[Path]) -> None:
        """Store a finished check's report, unless the project changed while it ran."""
        if self.key is None or self._key() != self.key:
            return
        digests = {str(p): _file_digest(p) for p in sorted(set(outside))}
        self.cache.put(self.key, json.dumps({"exit_code": exit_code, "stdout": stdout, "written": time.time(),
                                             "outside": digests}))
