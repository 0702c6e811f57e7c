"""The checks of one environment's built objects: every object validated strictly against its schema
(built-in kinds and CRDs; an object without a schema is an error), and no duplicate identities, no
namespace the environment does not create, and no custom resource whose CRD comes from a component it
does not depend on.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from ..build import EnvironmentBuild
from ..catalog import Catalog
from ..credentials import prerequisite_files
from ..objectkey import ObjectKey, split_api_version
from ..plan import Plan
from .builtin import KubernetesSchemas, clear_builtin_caches, kubernetes_schemas
from .compiled import Errors, flatten, format_path, show
from .crds import CONTROLLER, PREREQUISITE, PROVIDED, CrdIndex, clear_crd_caches, compile_crd_schema, load_prerequisite_crds
from .findings import EnvironmentReport, Finding, Violation

# Namespaces every cluster has; objects may live there without the environment creating them.
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
# The pseudo-component of a GitOps controller's objects (gitops/<env>/), whose CRDs the controller installs.
GITOPS_COMPONENT = "gitops"


def clear_caches() -> None:
    """Forget every loaded and compiled schema (for measuring a cold start)."""
    clear_builtin_caches()
    clear_crd_caches()


@cache
def code_digest() -> bytes:
    """A digest of the code that decides a verdict: this package and the object identity it uses."""
    digest = hashlib.sha256()
    for path in [*sorted(Path(__file__).parent.glob("*.py")), Path(__file__).parents[1] / "objectkey.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


class Validator:
    """Validates objects against the Kubernetes schemas and the given CRDs."""

    def __init__(self, kubernetes: KubernetesSchemas, crds: CrdIndex):
        self.kubernetes = kubernetes
        self.crds = crds

    def validate(self, obj: Any) -> list[Violation]:
        errors: Errors = []
        self._validate(obj, errors)
        return [Violation(format_path(flatten(path)), message) for path, message in errors]

    def _validate(self, obj: Any, errors: Errors) -> None:
        if not isinstance(obj, dict):
            errors.append(((), f"expected an object, found {show(obj)}"))
            return
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not api_version:
            errors.append(((), "apiVersion is missing"))
            return
        if not isinstance(kind, str) or not kind:
            errors.append(((), "kind is missing"))
            return
        group, version = split_api_version(api_version)
        builtin = self.kubernetes.validator(api_version, kind)
        if builtin is not None:
            if kind == "Secret" and group == "" and isinstance(obj.get("sops"), dict):
                # A SOPS-encrypted Secret: Flux decrypts it and drops the sops metadata before applying.
                obj = {key: value for key, value in obj.items() if key != "sops"}
            builtin(obj, (), errors)
            return
        if self.kubernetes.is_builtin(group, kind):
            served = ", ".join(sorted(self.kubernetes.served[(group, kind)]))
            errors.append((((), "apiVersion"), f"Kubernetes {self.kubernetes.version} does not serve {kind} in {api_version} "
                                               f"(served versions: {served})"))
            return
        crd = self.crds.find(group, kind)
        if crd is None:
            errors.append((((), "kind"), f"no schema for {kind} ({api_version}): not a kind of Kubernetes "
                                         f"{self.kubernetes.version} and no CRD of the environment defines it"))
            return
        if version not in crd.versions:
            errors.append((((), "apiVersion"), f"CRD {crd.name} does not serve version {version!r} "
                                               f"(served: {', '.join(sorted(crd.versions)) or 'none'})"))
            return
        self.kubernetes.object_meta({k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}, (), errors)
        schema = crd.versions[version]
        if schema is None:
            errors.append((((), "apiVersion"), f"CRD {crd.name} version {version} has no openAPIV3Schema"))
            return
        if version not in crd.compiled:
            try:
                crd.compiled[version] = compile_crd_schema(schema)
            except (ValueError, TypeError, AttributeError) as err:
                errors.append((((), "apiVersion"), f"the schema of CRD {crd.name} version {version} is malformed: {err}"))
                return
        crd.compiled[version](obj, (), errors)


def _metadata(obj: Any) -> dict[str, Any]:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _dependencies(catalog: Catalog, settings: dict[str, dict[str, Any]], name: str) -> set[str]:
    """A component and everything it depends on, transitively, with what its settings in the environment
    make it need (catalog `requires`)."""
    seen = {name}
    stack = [name]
    while stack:
        current = stack.pop()
        component = catalog.components.get(current)
        for dependency in component.needs(settings.get(current, {})) if component else ():
            if dependency not in seen:
                seen.add(dependency)
                stack.append(dependency)
    return seen


def _object_digests(build: EnvironmentBuild, owned: list[tuple[str, dict[str, Any]]], kubernetes: KubernetesSchemas,
                    other_crds: Sequence[dict[str, Any]], gitops_objects: Sequence[dict[str, Any]]) -> list[str] | None:
    """For each owned object, then each GitOps object, a digest of it and of every schema it can be held to
    (the Kubernetes schemas and all the environment's CRDs); None when the owned objects did not all come
    from JSON lines (their digests are of those lines)."""
    objects: list[bytes] = []
    for component in build.components:
        digests = component.object_digests
        if digests is None:
            return None
        objects.extend(digests)
    schemas = hashlib.sha256()
    definitions = kubernetes.directory / "_definitions.json"
    schemas.update(f"{kubernetes.directory}:{definitions.stat().st_size}:{definitions.stat().st_mtime_ns}".encode())
    schemas.update(code_digest())  # the validator itself
    for (_, obj), digest in zip(owned, objects, strict=True):
        if is_crd(obj):
            schemas.update(digest)
    schemas.update(json.dumps(list(other_crds), sort_keys=True).encode())
    common = schemas.digest()
    objects.extend(hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).digest() for obj in gitops_objects)
    return [hashlib.sha256(common + digest).hexdigest() for digest in objects]


def check_environment(
    build: EnvironmentBuild,
    plan: Plan,
    controller_crds: Sequence[dict[str, Any]] = (),
    gitops_objects: Sequence[dict[str, Any]] = (),
    known: Mapping[str, tuple[Violation, ...]] | None = None,
    provided_crds: Sequence[dict[str, Any]] = (),
) -> EnvironmentReport:
    """Every check on one environment's built objects (and the GitOps objects that deploy it).

    known holds schema verdicts from an earlier check (EnvironmentReport.verdicts): objects whose digest
    it holds are not validated again. provided_crds are those of the components the cluster provides."""
    started = time.perf_counter()
    env = build.environment
    prerequisite_crds = load_prerequisite_crds(prerequisite_files(plan.environment(env).environment))
    kubernetes = kubernetes_schemas(plan.platform.kubernetes_version)
    owned: list[tuple[str, dict[str, Any]]] = [(c.name, obj) for c in build.components for obj in c.objects]
    crds = CrdIndex([(name, obj) for name, obj in owned if is_crd(obj)] + [(CONTROLLER, crd) for crd in controller_crds]
                    + [(PREREQUISITE, crd) for crd in prerequisite_crds] + [(PROVIDED, crd) for crd in provided_crds])
    validator = Validator(kubernetes, crds)
    findings: list[Finding] = []
    digests = _object_digests(build, owned, kubernetes, [*controller_crds, *prerequisite_crds, *provided_crds], gitops_objects)
    known = known or {}
    verdicts: dict[str, tuple[Violation, ...]] = {}

    def validate(index: int, obj: Any) -> tuple[Violation, ...]:
        """The object's schema violations (index counts the owned objects, then the GitOps ones), from known when it holds them."""
        if digests is None:
            return tuple(validator.validate(obj))
        digest = digests[index]
        if digest not in verdicts:
            verdicts[digest] = known[digest] if digest in known else tuple(validator.validate(obj))
        return verdicts[digest]

    def finding(component: str, obj: Any, field: str, message: str, check: str) -> None:
        metadata = _metadata(obj)
        kind = obj.get("kind") if isinstance(obj, dict) else None
        findings.append(Finding(env, component, str(kind or "?"), str(metadata.get("namespace") or ""),
                                str(metadata.get("name") or "?"), field, message, check))

    def cluster_scoped(group: str, kind: str) -> bool:
        if kubernetes.is_builtin(group, kind):
            return kubernetes.is_cluster_scoped(group, kind)
        crd = crds.find(group, kind)
        return crd is not None and crd.scope == "Cluster"

    namespace_keys = [ObjectKey.from_manifest(obj) for _, obj in owned if isinstance(obj, dict) and obj.get("kind") == "Namespace"]
    created = SYSTEM_NAMESPACES | {key.name for key in namespace_keys if key.group == ""}
    closure: dict[str, set[str]] = {}
    settings = {p.name: p.config.settings for p in plan.environment(env).components}
    gitops = [(GITOPS_COMPONENT, obj) for obj in gitops_objects]
    groups = ((owned, created, 0), (gitops, SYSTEM_NAMESPACES | {plan.platform.gitops.namespace}, len(owned)))
    for objects, namespaces, first in groups:
        seen: dict[ObjectKey, str] = {}
        for index, (component, obj) in enumerate(objects, start=first):
            for violation in validate(index, obj):
                finding(component, obj, violation.field, violation.message, "schema")
            if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
                continue
            key = ObjectKey.from_manifest(obj)
            group, kind = key.group, key.kind
            if key.namespace and cluster_scoped(group, kind):
                key = ObjectKey(group, kind, "", key.name, key.version)  # the API server ignores a cluster-scoped object's namespace
            if key in seen:
                finding(component, obj, "metadata.name", f"duplicate object: {kind}.{group or 'core'} {key.location} "
                                                         f"is also built by component {seen[key]}", "duplicate")
            else:
                seen[key] = component
            if key.namespace and key.namespace not in namespaces:
                finding(component, obj, "metadata.namespace", f"namespace {key.namespace!r} is neither created by environment {env} "
                                                              "nor one every cluster has", "namespace")
            if component == GITOPS_COMPONENT or kubernetes.is_builtin(group, kind):
                continue
            crd = crds.find(group, kind)
            if crd is None or crd.component in (PREREQUISITE, PROVIDED):
                continue  # no CRD at all is already a schema finding; prerequisites and provided components come first
            if component not in closure:
                closure[component] = _dependencies(plan.catalog, settings, component)
            if crd.component not in closure[component]:
                provider = "the GitOps controller" if crd.component == CONTROLLER else f"component {crd.component}"
                finding(component, obj, "kind", f"CRD {crd.name} comes from {provider}, which {component} does not depend on "
                                                "(add it to dependsOn so that the CRD is applied first)", "crd-order")
    return EnvironmentReport(env, len(owned) + len(gitops_objects), tuple(sorted(findings)), time.perf_counter() - started, verdicts)


def is_crd(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "CustomResourceDefinition" and ObjectKey.from_manifest(obj).group == "apiextensions.k8s.io"


def check_objects(
    builds: Sequence[EnvironmentBuild],
    plan: Plan,
    controller_crds: Sequence[dict[str, Any]] = (),
    gitops_objects: Mapping[str, Sequence[dict[str, Any]]] | None = None,
    provided_crds: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> list[Finding]:
    """Every finding of every given environment, sorted. provided_crds: by environment, the CRDs of the
    components its cluster provides."""
    findings: list[Finding] = []
    for build in builds:
        findings.extend(check_environment(build, plan, controller_crds, (gitops_objects or {}).get(build.environment, ()),
                                          provided_crds=(provided_crds or {}).get(build.environment, ())).findings)
    return sorted(findings)
