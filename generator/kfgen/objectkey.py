"""The identity of a Kubernetes object: its API group, kind, namespace and name.

The API server knows an object by these four. The version in its apiVersion is only how the object
is written: two manifests that differ in version alone are the same object, which a diff shows as a
changed apiVersion field, the checks report as a duplicate, and apply does not prune when a manifest
moves to another version. A key still carries the version, because requests to the API server name
it, but equality, hashing and order ignore it. Cluster-scoped objects have the empty namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def split_api_version(api_version: str) -> tuple[str, str]:
    """An apiVersion as (group, version); the core group is the empty string."""
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass(frozen=True, order=True, slots=True)
class ObjectKey:
    """Sorted by group, kind, namespace and name; printed as `Kind.group namespace/name`."""

    group: str
    kind: str
    namespace: str
    name: str
    version: str = field(default="", compare=False)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ObjectKey:
        """The key of an object as written; a missing or malformed field reads as empty."""
        metadata = manifest.get("metadata")
        if not isinstance(metadata, Mapping):
            metadata = {}
        group, version = split_api_version(str(manifest.get("apiVersion") or ""))
        return cls(group, str(manifest.get("kind") or ""), str(metadata.get("namespace") or ""), str(metadata.get("name") or ""), version)

    @classmethod
    def from_api_version(cls, api_version: str, kind: str, namespace: str, name: str) -> ObjectKey:
        group, version = split_api_version(api_version)
        return cls(group, kind, namespace, name, version)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_kind(self) -> str:
        """The kind with its group, as kubectl spells a resource type: `Deployment.apps`, or `Service` for the core group."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def location(self) -> str:
        """`namespace/name`, or the name alone for a cluster-scoped object."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def kind_and_name(self) -> str:
        """The object named without its group, as the policies (lib.rego) and apply's messages name it."""
        return f"{self.kind} {self.location}"

    def __str__(self) -> str:
        return f"{self.qualified_kind} {self.location}"
