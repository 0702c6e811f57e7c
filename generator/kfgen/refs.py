"""References to upstream sources: a directory of a repository at a ref, or a release file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import parse_qs

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
    def repo_key(self) -> str:
        return f"{self.host}/{self.owner}/{self.repo}"

    @property
    def url(self) -> str:
        return f"https://{self.host}/{self.owner}/{self.repo}//{self.path}?ref={self.ref}"

    def url_via(self, mirrors: Mapping[str, str]) -> str:
        """The reference kustomize fetches: from the repository's mirror (by host/owner/repo) when it has one."""
        mirror = mirrors.get(self.repo_key)
        return f"{mirror}//{self.path}?ref={self.ref}" if mirror else self.url


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


def _parse_mirrored(text: str, mirrors: Mapping[str, str]) -> RemoteDir | None:
    """A reference into a mirror, as the upstream repository it mirrors (the source caches hold that one)."""
    for repo_key, mirror in mirrors.items():
        if not text.startswith(mirror + "//") and not text.startswith(mirror + "?"):
            continue
        rest = text[len(mirror):]
        path, _, query = rest.partition("?")
        refs = parse_qs(query).get("ref")
        if not refs:
            raise SourceError(f"remote reference {text!r} names no ref")
        host, owner, repo = repo_key.split("/")
        path = path.strip("/")
        _check_segments(text, refs[0], *[p for p in path.split("/") if p])
        return RemoteDir(host, owner, repo, refs[0], path)
    return None


def parse_remote(text: str, mirrors: Mapping[str, str] | None = None) -> RemoteDir | ReleaseFile | None:
    """Parse a kustomize remote reference; None when text is a local path. mirrors maps upstream
    repositories (host/owner/repo) to the URLs of their mirrors, whose references parse as upstream's."""
    mirrored = _parse_mirrored(text, mirrors) if mirrors else None
    if mirrored:
        return mirrored
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
