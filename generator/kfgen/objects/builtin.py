"""Built-in kinds: the strict JSON schemas that the `kubernetes-validate` package ships per Kubernetes version.

They are read as data and compiled here: the package's own validator is far too slow to run on every
object. Only the JSON Schema (draft 2020-12) keywords those files use are supported, and any other
keyword is refused when compiling, so nothing is silently left unchecked.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError, ToolMissing
from ..objectkey import split_api_version
from .compiled import Check, Errors, FieldPath, accept, enum_check, run_all, show, type_test, unknown_field

# Built-in kinds that are cluster-scoped (the schemas do not say; the API discovery documents do).
CLUSTER_SCOPED_BUILTINS = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"), ("", "ComponentStatus"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
    ("authentication.k8s.io", "TokenReview"), ("authentication.k8s.io", "SelfSubjectReview"),
    ("authorization.k8s.io", "SubjectAccessReview"), ("authorization.k8s.io", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "SelfSubjectRulesReview"),
    ("certificates.k8s.io", "CertificateSigningRequest"), ("certificates.k8s.io", "ClusterTrustBundle"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"), ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("internal.apiserver.k8s.io", "StorageVersion"), ("storagemigration.k8s.io", "StorageVersionMigration"),
    ("networking.k8s.io", "IngressClass"), ("networking.k8s.io", "IPAddress"), ("networking.k8s.io", "ServiceCIDR"),
    ("node.k8s.io", "RuntimeClass"), ("policy", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("resource.k8s.io", "DeviceClass"), ("resource.k8s.io", "ResourceSlice"), ("resource.k8s.io", "DeviceTaintRule"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"), ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"), ("storage.k8s.io", "VolumeAttributesClass"),
})

_ANNOTATIONS = frozenset({
    "description", "format", "default", "$schema", "$id", "x-kubernetes-group-version-kind", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key",
    "x-kubernetes-unions",
})
_KEYWORDS = frozenset({"type", "enum", "properties", "additionalProperties", "required", "items", "oneOf", "$ref"})
_DEFS_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/", "_definitions.json#/$defs/")


class _JsonSchemaCompiler:
    """Compiles kubernetes-validate's schemas, resolving each `$ref` into its definitions once."""

    def __init__(self, definitions: dict[str, Any]):
        self.definitions = definitions
        self.refs: dict[str, Check] = {}

    def ref(self, ref: str) -> Check:
        name = next((ref[len(prefix):] for prefix in _DEFS_PREFIXES if ref.startswith(prefix)), None)
        if name is None or name not in self.definitions:
            raise ValueError(f"unresolvable $ref {ref!r}")
        if name not in self.refs:
            # A recursive definition (JSONSchemaProps) reaches itself through this trampoline.
            holder: list[Check] = []
            self.refs[name] = lambda v, p, e: holder[0](v, p, e)
            holder.append(self.compile(self.definitions[name]))
            self.refs[name] = holder[0]
        return self.refs[name]

    def compile(self, node: dict[str, Any]) -> Check:
        unknown = set(node) - _ANNOTATIONS - _KEYWORDS
        if unknown:
            raise ValueError(f"unsupported schema keywords {sorted(unknown)}")
        checks: list[Check] = []
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        if "type" in node:
            types = [node["type"]] if isinstance(node["type"], str) else list(node["type"])
            test = type_test(types)
            expected = " or ".join(t for t in types if t != "null") or "null"

            def type_check(v: Any, p: FieldPath, e: Errors, test: Callable[[Any], bool] = test, expected: str = expected) -> None:
                if not test(v):
                    e.append((p, f"expected {expected}, found {show(v)}"))

            checks.append(type_check)
        if "enum" in node:
            checks.append(enum_check(node["enum"]))
        if "properties" in node or "additionalProperties" in node or "required" in node:
            checks.append(self._object(node))
        if "items" in node:
            item = self.compile(node["items"])

            def items(v: Any, p: FieldPath, e: Errors, item: Check = item) -> None:
                if type(v) is list:
                    for index, x in enumerate(v):
                        item(x, (p, index), e)

            checks.append(items)
        if "oneOf" in node:
            checks.append(self._one_of(node["oneOf"]))
        return run_all(checks) if checks else accept

    def _object(self, node: dict[str, Any]) -> Check:
        properties = {key: self.compile(sub) for key, sub in (node.get("properties") or {}).items()}
        known = sorted(properties)
        additional = node.get("additionalProperties", True)
        extra: Check | None = None if additional is True else self.compile(additional) if isinstance(additional, dict) else None
        closed = additional is False
        required = tuple(node.get("required") or ())

        def check(v: Any, p: FieldPath, e: Errors) -> None:
            if type(v) is not dict:
                return
            for key, x in v.items():
                sub = properties.get(key)
                if sub is not None:
                    sub(x, (p, key), e)
                elif closed:
                    e.append(((p, key), unknown_field(key, known)))
                elif extra is not None:
                    extra(x, (p, key), e)
            for key in required:
                if key not in v:
                    e.append(((p, key), "required field is missing"))

        return check

    def _one_of(self, branches: list[dict[str, Any]]) -> Check:
        compiled = [self.compile(b) for b in branches]
        types: list[str | list[str] | None] = [b.get("type") for b in branches]
        if all(types):
            names = sorted({t for k in types if k for t in ([k] if isinstance(k, str) else k) if t != "null"})
            expected = "expected " + " or ".join(names)
        else:
            expected = "must match exactly one of its alternatives"

        def check(v: Any, p: FieldPath, e: Errors) -> None:
            matched = 0
            for branch in compiled:
                scratch: Errors = []
                branch(v, p, scratch)
                matched += not scratch
            if matched != 1:
                e.append((p, f"{expected}, found {show(v)}" + (" (matches more than one alternative)" if matched > 1 else "")))

        return check


class KubernetesSchemas:
    """The strict schemas of one Kubernetes version, as kubernetes-validate ships them."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.version = directory.name.split("-")[0].lstrip("v").removesuffix(".0")
        with open(directory / "_definitions.json", encoding="utf-8") as handle:
            self.compiler = _JsonSchemaCompiler(json.load(handle)["$defs"])
        self.kinds: dict[tuple[str, str, str], Check | None] = {}
        self.served: dict[tuple[str, str], list[str]] = {}
        for name, definition in self.compiler.definitions.items():
            if name.startswith("io.k8s.apimachinery."):
                continue  # DeleteOptions, WatchEvent, Status: messages of the API, not objects to apply
            for gvk in definition.get("x-kubernetes-group-version-kind") or ():
                if name.endswith("." + gvk["kind"]):
                    self.served.setdefault((gvk["group"], gvk["kind"]), []).append(gvk["version"])
        self.object_meta = self.compiler.compile({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            },
        })

    def is_builtin(self, group: str, kind: str) -> bool:
        return (group, kind) in self.served

    def is_cluster_scoped(self, group: str, kind: str) -> bool:
        return (group, kind) in CLUSTER_SCOPED_BUILTINS

    def validator(self, api_version: str, kind: str) -> Check | None:
        """The compiled schema of a built-in kind at this apiVersion, or None when Kubernetes does not serve it."""
        group, version = split_api_version(api_version)
        key = (group, version, kind)
        if key not in self.kinds:
            self.kinds[key] = None
            # kubernetes-validate's file naming: the group's first label, then the version; a few
            # groups (internal.apiserver.k8s.io) are named otherwise, so look for those by kind.
            prefix = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            if version in self.served.get((group, kind), ()):
                named = self.directory / f"{kind.lower()}-{prefix}.json"
                for path in [named, *sorted(self.directory.glob(f"{kind.lower()}-*{version}.json"))]:
                    schema = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
                    if {"group": group, "version": version, "kind": kind} in schema.get("x-kubernetes-group-version-kind", []):
                        self.kinds[key] = self.compiler.compile(schema)
                        break
        return self.kinds[key]


_SCHEMAS: dict[Path, KubernetesSchemas] = {}


def schema_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissing("the Python package kubernetes-validate is not installed: reinstall kfgen (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


def kubernetes_schemas(kubernetes_version: str) -> KubernetesSchemas:
    """The strict schemas for a Kubernetes minor version such as "1.33", loaded once per process."""
    directory = schema_root() / f"v{kubernetes_version}.0-local-strict"
    if not directory.is_dir():
        known = sorted(p.name.split("-")[0][1:].rsplit(".", 1)[0] for p in schema_root().glob("v*-local-strict"))
        raise InputError(f"no Kubernetes schemas for version {kubernetes_version!r}; kubernetes-validate has: {', '.join(known)}")
    if directory not in _SCHEMAS:
        _SCHEMAS[directory] = KubernetesSchemas(directory)
    return _SCHEMAS[directory]


def clear_builtin_caches() -> None:
    _SCHEMAS.clear()
