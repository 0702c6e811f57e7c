"""References to upstream sources: a directory of a repository at a ref, or a release file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import SourceError

_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_RELEASE = re.compile(r"^https://([^/]+)/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/?#]+)$")
_REMOTE_DIR = re.compile(
    r"^(?:https://|git::https://|git@)?(github\.com)[/:]([^/]+)/([^/?#]+?)(?:\.git)?(?://?([^?#]*))?\?(?:.*&)?ref=([^&#]+)"
)


@dataclass(frozen=True, order=True)
class RemoteDir:
    """A directory of a repository at a ref: one kustomization root."""

    host: str
    owner: str
    repo: str
    ref: str
    path: str

    @property
    def lock_key(self) -> tuple[str, str]:
        return (f"{self.host}/{self.owner}/{self.repo}", self.ref)

    @property
    def relpath(self) -> PurePosixPath:
        return PurePosixPath(self.host, self.owner, self.repo, self.ref, *PurePosixPath(self.path).parts)

    @property
    def url(self) -> str:
        return f"https://{self.host}/{self.owner}/{self.repo}//{self.path}?ref={self.ref}"


@dataclass(frozen=True, order=True)
class ReleaseFile:
    """A file attached to a release."""

    host: str
    owner: str
    repo: str
    tag: str
    name: str

    @property
    def lock_key(self) -> tuple[str, str]:
        return (f"{self.host}/{self.owner}/{self.repo}/releases/download/{self.name}", self.tag)

    @property
    def relpath(self) -> PurePosixPath:
        return PurePosixPath(self.host, self.owner, self.repo, "releases", "download", self.tag, self.name)

    @property
    def url(self) -> str:
        return f"https://{self.host}/{self.owner}/{self.repo}/releases/download/{self.tag}/{self.name}"


def _check_segments(text: str, *parts: str) -> None:
    for part in parts:
        if not _SAFE_SEGMENT.match(part):
            raise SourceError(f"unsafe path segment {part!r} in remote reference {text!r}")


def parse_remote(text: str) -> RemoteDir | ReleaseFile | None:
    """Parse a kustomize remote reference; None when text is a local path."""
    release = _RELEASE.match(text)
    if release:
        _check_segments(text, *release.groups())
        return ReleaseFile(*release.groups())
    remote = _REMOTE_DIR.match(text)
    if remote:
        host, owner, repo, path, ref = remote.groups()
        path = (path or "").strip("/")
        _check_segments(text, owner, repo, ref, *[p for p in path.split("/") if p])
        return RemoteDir(host, owner, repo, ref, path)
    if "://" in text or text.startswith("git@"):
        raise SourceError(f"unsupported remote reference {text!r}")
    return None
