"""The component catalog: components/<name>/component.yaml, validated into dataclasses."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import CatalogError, Problem
from .refs import RemoteDir
from .schemas import schema_error, validate
from .yamlio import Manifest, load_file

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class PatchTemplate:
    template: Path
    kind: str  # "patch" or "resource"
    target: dict[str, str] | None
    when: str | None


@dataclass(frozen=True)
class Variant:
    """Upstream's alternative of a component for clusters of some providers, or for the settings its `when`
    holds for (paths or components replaced); variants.chosen_variant picks one."""

    name: str
    providers: tuple[str, ...]  # empty: any provider
    paths: tuple[str, ...] | None  # None: the release's
    components: tuple[str, ...] | None
    reason: str
    required_settings: tuple[str, ...] = ()  # settings an environment of this variant must set (no default)
    when: str | None = None  # a template expression over the component's settings
    images: tuple[str, ...] = ()  # container images its paths pull beyond the release's own


@dataclass(frozen=True)
class ScaledWorkload:
    """A Deployment sizing touches, and whether it may run more than one replica.

    scaling: "any" (stateless, or it elects a leader on its own), "leaderElection" (only with the
    patches that switch leader election on) or "one" (never more than one replica)."""

    name: str
    scaling: str
    leader_election: tuple[PatchTemplate, ...] = ()
    reason: str = ""
    disruption_budget: str | None = None  # the PodDisruptionBudget upstream ships for it


@dataclass(frozen=True)
class ImagePlace:
    """An image reference upstream keeps outside a container's `image` field, which kustomize's `images`
    does not reach: an environment variable, an argument, a ConfigMap value, a field of a custom resource."""

    kind: str  # of the built object
    name: str  # of the built object (before any hash suffix)
    file: str  # the upstream file, relative to the repository, that defines the value
    source: str  # how file holds it: manifest | file | envFile | literal
    container: str | None = None  # env, arg: the container, else every container of the pod template
    env: str | None = None  # the value of this environment variable
    arg: str | None = None  # the argument --flag=IMAGE
    key: str | None = None  # the ConfigMap data key
    format: str = "text"  # of the ConfigMap value: yaml | json | text
    path: str | None = None  # a JSON pointer to the value in a custom resource


@dataclass(frozen=True)
class CodeImage:
    """An image a controller's code starts (in profile namespaces, say) under a default name written in its
    code, which the manifests do not hold: environment variables of the controller's workload override the
    name and the tag. Mirroring sets both; upstream's workload must not set them already."""

    kind: str  # of the controller's workload
    name: str
    file: str  # the upstream file that defines the workload
    container: str
    image: str  # the name the code uses when name_env is unset
    name_env: str
    tag_env: str
    tag_file: str  # the upstream file holding the tag the code uses when tag_env is unset
    tag_config: str  # the ConfigMap in tag_file
    tag_key: str  # its data key


@dataclass(frozen=True)
class Release:
    """Where a component's manifests come from in one Kubeflow release."""

    repo: str  # host/owner/repo
    ref: str
    paths: tuple[str, ...]
    components: tuple[str, ...]
    crds: tuple[str, ...]
    images: tuple[str, ...]
    workloads: tuple[ScaledWorkload, ...]
    namespaces: tuple[str, ...]
    cluster_kinds: tuple[str, ...]
    variants: tuple[Variant, ...] = ()
    image_places: tuple[ImagePlace, ...] = ()
    code_images: tuple[CodeImage, ...] = ()

    @property
    def scalable(self) -> tuple[str, ...]:
        """Names of the Deployments sizing touches."""
        return tuple(w.name for w in self.workloads)

    def with_variant(self, variant: Variant | None) -> Release:
        """This release with a variant's paths and components in place of its own, and its images too."""
        if variant is None:
            return self
        return replace(self, paths=self.paths if variant.paths is None else variant.paths,
                       components=self.components if variant.components is None else variant.components, variants=(),
                       images=self.images + tuple(i for i in variant.images if i not in self.images))

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
class TrustingWorkload:
    """A workload that reads the environment's extra root certificates (see trust.py)."""

    kind: str
    name: str
    namespace: str
    container: str
    runtime: str  # go or node


@dataclass(frozen=True)
class Hardening:
    workloads: tuple[HardenedWorkload, ...] = ()
    rbac: tuple[NarrowedRule, ...] = ()
    mesh_permissive: tuple[PermissivePorts, ...] = ()


@dataclass(frozen=True)
class Requirement:
    """Another component this one needs while one of its settings has one of some values (no values: while
    the setting is not empty)."""

    component: str
    setting: str
    values: tuple[Any, ...] | None
    reason: str

    def applies(self, settings: dict[str, Any]) -> bool:
        value = settings.get(self.setting)
        return bool(value) if self.values is None else value in self.values


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
    requires: tuple[Requirement, ...] = ()
    trust: tuple[TrustingWorkload, ...] = ()

    def needs(self, settings: dict[str, Any]) -> tuple[str, ...]:
        """What must be applied first with these settings: dependsOn, and the requirements that apply."""
        return self.depends_on + tuple(r.component for r in self.requires if r.applies(settings) and r.component not in self.depends_on)

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
    def patch_template(patch: Manifest, where: tuple[Any, ...], default_target: dict[str, str] | None = None) -> PatchTemplate:
        template = folder / patch["template"]
        if not template.is_file() or not template.resolve().is_relative_to(folder.resolve()):
            problems.append(document.problem(where + ("template",), f"no template file {patch['template']!r} in {folder.name}/"))
        kind = patch.get("kind", "patch")
        target = patch.get("target") or (default_target if kind == "patch" else None)
        if kind == "patch" and not target:
            problems.append(document.problem(where, "a patch needs a target"))
        return PatchTemplate(template, kind, target, patch.get("when"))

    patches = [patch_template(patch, ("patches", index)) for index, patch in enumerate(data.get("patches") or [])]
    setting_names = set(data["settings"].get("properties") or {})
    for release, rel in data["releases"].items():
        for index, variant in enumerate(rel.get("variants") or ()):
            for position, setting in enumerate(variant.get("requiredSettings") or ()):
                if setting not in setting_names:
                    problems.append(document.problem(("releases", release, "variants", index, "requiredSettings", position),
                                                     f"no setting {setting!r} in this component's settings"))

    def workload(entry: str | Manifest, where: tuple[Any, ...]) -> ScaledWorkload:
        if isinstance(entry, str):
            return ScaledWorkload(entry, "any")
        target = {"group": "apps", "kind": "Deployment", "name": f"^{entry['name']}$"}
        return ScaledWorkload(entry["name"], entry.get("scaling", "any"), tuple(
            patch_template(p, where + ("leaderElection", i), target) for i, p in enumerate(entry.get("leaderElection") or ())),
            entry["reason"], entry.get("disruptionBudget"))
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
                workloads=tuple(workload(w, ("releases", name, "scalable", i)) for i, w in enumerate(rel["scalable"])),
                namespaces=tuple(rel["namespaces"]), cluster_kinds=tuple(rel["clusterKinds"]),
                variants=tuple(Variant(v["name"], tuple(v.get("providers") or ()),
                                       tuple(v["paths"]) if "paths" in v else None,
                                       tuple(v["components"]) if "components" in v else None, v["reason"],
                                       tuple(v.get("requiredSettings") or ()), v.get("when"),
                                       tuple(v.get("images") or ()))
                               for v in rel.get("variants") or ()),
                image_places=tuple(_image_place(place) for place in rel.get("imagePlaces", ())),
                code_images=tuple(_code_image(code) for code in rel.get("codeImages", ())),
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
        requires=tuple(Requirement(r["component"], r["setting"], tuple(r["in"]) if "in" in r else None, r["reason"])
                       for r in data.get("requires") or ()),
        trust=tuple(TrustingWorkload(w["kind"], w["name"], w.get("namespace", data["namespace"]), w["container"], w["runtime"])
                    for w in data.get("trust") or ()),
    )
    for index, requirement in enumerate(component.requires):
        if requirement.setting not in (data["settings"].get("properties") or {}):
            problems.append(document.problem(("requires", index, "setting"), f"no setting {requirement.setting!r} in this entry's settings"))
    return component, problems


def _image_place(data: Manifest) -> ImagePlace:
    return ImagePlace(kind=data["kind"], name=data["name"], file=data["file"], source=data.get("from", "manifest"),
                      container=data.get("container"), env=data.get("env"), arg=data.get("arg"), key=data.get("key"),
                      format=data.get("format", "text"), path=data.get("path"))


def _code_image(data: Manifest) -> CodeImage:
    tag = data["tagFrom"]
    return CodeImage(kind=data["kind"], name=data["name"], file=data["file"], container=data["container"],
                     image=data["image"], name_env=data["nameEnv"], tag_env=data["tagEnv"], tag_file=tag["file"],
                     tag_config=tag["configMap"], tag_key=tag["key"])


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
        for index, requirement in enumerate(component.requires):
            if requirement.component not in components:
                problems.append(Problem(component.file, 0, 0, f"requires[{index}].component", f"unknown component {requirement.component!r}"))
    if problems:
        raise CatalogError(problems)
    return Catalog(components, releases)
