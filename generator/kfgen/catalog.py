"""The component catalog: components/<name>/component.yaml, validated into dataclasses."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError, Problem
from .refs import RemoteDir
from .schemas import schema_error, validate
from .yamlio import Manifest, load_file

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Release:
    """Where a component's manifests come from in one Kubeflow release."""

    repo: str  # host/owner/repo
    ref: str
    paths: tuple[str, ...]
    components: tuple[str, ...]
    crds: tuple[str, ...]
    images: tuple[str, ...]
    scalable: tuple[str, ...]
    namespaces: tuple[str, ...]
    cluster_kinds: tuple[str, ...]

    def _dir(self, path: str) -> RemoteDir:
        host, owner, repo = self.repo.split("/")
        return RemoteDir(host, owner, repo, self.ref, path)

    @property
    def roots(self) -> list[RemoteDir]:
        """The kustomization roots this release builds (paths, then components)."""
        return [self._dir(p) for p in self.paths + self.components]

    @property
    def resource_roots(self) -> list[RemoteDir]:
        return [self._dir(p) for p in self.paths]

    @property
    def component_roots(self) -> list[RemoteDir]:
        return [self._dir(p) for p in self.components]


@dataclass(frozen=True)
class PatchTemplate:
    template: Path
    kind: str  # "patch" or "resource"
    target: dict[str, str] | None
    when: str | None


@dataclass(frozen=True)
class SecretKey:
    name: str
    value: str | None  # a fixed value that is not secret, else None
    credential: str  # the credential it holds, shared across Secrets: <secret>/<key> unless the catalog says
    setting: str | None = None  # a dotted settings path whose value, when set, is the key's fixed value


@dataclass(frozen=True)
class CatalogSecret:
    """An upstream Secret with default credentials, which every environment replaces."""

    name: str
    namespace: str
    description: str
    releases: tuple[str, ...]  # empty: every release
    keys: tuple[SecretKey, ...]
    when: str | None = None  # a template expression over the settings: needed only when true


@dataclass(frozen=True)
class ContainerResources:
    index: int  # position in the pod's containers; the patch tests that the name is still there
    name: str
    resources: dict[str, dict[str, str]]


@dataclass(frozen=True)
class HardenedWorkload:
    """A workload upstream ships without limits, or with a service account token it never uses."""

    kind: str
    name: str
    api_access: bool | None  # False: mount no service account token
    containers: tuple[ContainerResources, ...]


@dataclass(frozen=True)
class NarrowedRule:
    """A wildcard of an upstream role replaced by the explicit list the program needs."""

    kind: str
    name: str
    rule: int
    expect: dict[str, list[str]]
    api_groups: tuple[str, ...]
    verbs: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class PermissivePorts:
    """Ports of meshed pods that callers outside the mesh reach while mutual TLS is otherwise STRICT."""

    name: str
    namespace: str
    selector: dict[str, str]
    ports: tuple[int, ...]
    reason: str


@dataclass(frozen=True)
class Hardening:
    workloads: tuple[HardenedWorkload, ...] = ()
    rbac: tuple[NarrowedRule, ...] = ()
    mesh_permissive: tuple[PermissivePorts, ...] = ()


@dataclass(frozen=True)
class Component:
    name: str
    description: str
    namespace: str
    set_namespace: bool
    enabled_by_default: bool
    depends_on: tuple[str, ...]
    releases: dict[str, Release]
    settings_schema: dict[str, Any]
    patches: tuple[PatchTemplate, ...]
    folder: Path
    file: str
    secrets: tuple[CatalogSecret, ...] = ()
    hardening: Hardening = Hardening()

    def secrets_in(self, release: str) -> tuple[CatalogSecret, ...]:
        return tuple(s for s in self.secrets if not s.releases or release in s.releases)

    def defaults(self) -> dict[str, Any]:
        """Default settings: every property's `default` in the settings schema."""
        return {key: copy.deepcopy(prop["default"])
                for key, prop in (self.settings_schema.get("properties") or {}).items() if "default" in prop}


@dataclass(frozen=True)
class Catalog:
    components: dict[str, Component]
    kubernetes_versions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # by Kubeflow release

    @property
    def releases(self) -> list[str]:
        return sorted(self.kubernetes_versions)


def _component(folder: Path, root: Path, releases: dict[str, tuple[str, ...]]) -> tuple[Component | None, list[Problem]]:
    display = str((folder / "component.yaml").relative_to(root.parent)) if folder.is_relative_to(root.parent) else str(folder / "component.yaml")
    document = load_file(folder / "component.yaml", display)
    problems = validate(document, "component.schema.json")
    if problems:
        return None, problems
    data: Manifest = document.data
    if data["name"] != folder.name:
        problems.append(document.problem(("name",), f"must equal the folder name {folder.name!r}"))
    invalid = schema_error(data["settings"])
    if invalid:
        where, message = invalid
        problems.append(document.problem(("settings",) + where, f"invalid settings schema: {message}"))
    for key, prop in (data["settings"].get("properties") or {}).items():
        if "default" not in prop:
            problems.append(document.problem(("settings", "properties", key), "every setting needs a default"))
    for release in data["releases"]:
        if release not in releases:
            problems.append(document.problem(("releases", release), f"unknown Kubeflow release; supported: {', '.join(sorted(releases))}"))
    patches = []
    for index, patch in enumerate(data.get("patches") or []):
        template = folder / patch["template"]
        if not template.is_file() or not template.resolve().is_relative_to(folder.resolve()):
            problems.append(document.problem(("patches", index, "template"), f"no template file {patch['template']!r} in {folder.name}/"))
        kind = patch.get("kind", "patch")
        if kind == "patch" and not patch.get("target"):
            problems.append(document.problem(("patches", index), "a patch needs a target"))
        patches.append(PatchTemplate(template, kind, patch.get("target"), patch.get("when")))
    component = Component(
        name=data["name"],
        description=data["description"],
        namespace=data["namespace"],
        set_namespace=data.get("setNamespace", False),
        enabled_by_default=data.get("enabledByDefault", True),
        depends_on=tuple(data["dependsOn"]),
        releases={
            name: Release(
                repo=rel["repo"], ref=rel.get("ref", name), paths=tuple(rel["paths"]),
                components=tuple(rel.get("components", ())), crds=tuple(rel["crds"]), images=tuple(rel["images"]),
                scalable=tuple(rel["scalable"]), namespaces=tuple(rel["namespaces"]),
                cluster_kinds=tuple(rel["clusterKinds"]),
            )
            for name, rel in sorted(data["releases"].items())
        },
        settings_schema=data["settings"],
        patches=tuple(patches),
        folder=folder,
        file=display,
        secrets=tuple(
            CatalogSecret(
                name=secret["name"], namespace=secret.get("namespace", data["namespace"]), description=secret["description"],
                releases=tuple(secret.get("releases", ())),
                keys=tuple(SecretKey(key["name"], key.get("value"), key.get("credential", f"{secret['name']}/{key['name']}"),
                                     key.get("setting"))
                           for key in secret["keys"]),
                when=secret.get("when"),
            )
            for secret in data.get("secrets") or ()
        ),
        hardening=_hardening(data.get("hardening") or {}, data["namespace"]),
    )
    return component, problems


def _hardening(data: Manifest, namespace: str) -> Hardening:
    return Hardening(
        workloads=tuple(
            HardenedWorkload(w["kind"], w["name"], w.get("apiAccess"),
                             tuple(ContainerResources(c["index"], c["name"], c["resources"]) for c in w.get("containers", ())))
            for w in data.get("workloads", ())),
        rbac=tuple(
            NarrowedRule(r["kind"], r["name"], r["rule"], r["expect"], tuple(r.get("apiGroups", ())), tuple(r.get("verbs", ())), r["reason"])
            for r in data.get("rbac", ())),
        mesh_permissive=tuple(
            PermissivePorts(m["name"], m.get("namespace", namespace), dict(m["selector"]), tuple(m["ports"]), m["reason"])
            for m in data.get("meshPermissive", ())),
    )


def load_catalog(root: Path) -> Catalog:
    """Load and validate every catalog entry below root (the components/ folder)."""
    releases_doc = load_file(root / "releases.yaml", "components/releases.yaml")
    problems = validate(releases_doc, "releases.schema.json")
    if problems:
        raise CatalogError(problems)
    releases = {name: tuple(entry["kubernetes"]) for name, entry in releases_doc.data["releases"].items()}
    components: dict[str, Component] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if not DNS_LABEL.match(folder.name):
            problems.append(Problem(str(folder), 0, 0, "", "component folders must be DNS-1123 labels"))
            continue
        if not (folder / "component.yaml").is_file():
            problems.append(Problem(str(folder), 0, 0, "", "folder has no component.yaml"))
            continue
        component, found = _component(folder, root, releases)
        problems.extend(found)
        if component:
            components[component.name] = component
    for component in components.values():
        for index, dependency in enumerate(component.depends_on):
            if dependency not in components:
                problems.append(Problem(component.file, 0, 0, f"dependsOn[{index}]", f"unknown component {dependency!r}"))
    if problems:
        raise CatalogError(problems)
    return Catalog(components, releases)
