"""Object checks: every built object validated strictly, plus identity, namespace and CRD-order rules.

Built-in kinds are validated against the strict JSON schemas that the `kubernetes-validate` package
ships for the spec's Kubernetes version (read as data; the package's own validator is far too slow
to run on every object). Custom resources are validated against the `openAPIV3Schema` of the CRD
version that defines them, with the API server's structural rules: a field the schema does not
declare is an error unless `x-kubernetes-preserve-unknown-fields` allows it at that level.

Schemas are compiled once into nested Python closures and cached by content, so the CRDs that every
environment shares are compiled once per process. An object without any schema is an error.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import EnvironmentBuild
from .catalog import Catalog
from .credentials import prerequisite_files
from .errors import InputError, ToolMissing
from .plan import Plan
from .yamlio import load_all_plain

# Namespaces every cluster has; objects may live there without the environment creating them.
SYSTEM_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})

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

# The pseudo-component of a GitOps controller's objects (gitops/<env>/), whose CRDs the controller installs.
GITOPS_COMPONENT = "gitops"
CONTROLLER = "(gitops controller)"
# CRDs of operators the cluster runs before the platform (prerequisites/), usable by every component.
PREREQUISITE = "(cluster prerequisite)"


@dataclass(frozen=True, order=True)
class Finding:
    """One failed check, naming the object and the field."""

    environment: str
    component: str
    kind: str
    namespace: str
    name: str
    field: str  # e.g. spec.template.spec.containers[0].image; empty for the whole object
    message: str
    check: str  # schema, duplicate, namespace or crd-order

    def format(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        field = f" {self.field}:" if self.field else ""
        return f"{self.environment}/{self.component}: {self.kind} {where}:{field} {self.message}"


@dataclass(frozen=True)
class Violation:
    """A schema violation inside one object."""

    field: str
    message: str


@dataclass(frozen=True)
class EnvironmentReport:
    environment: str
    objects: int
    findings: tuple[Finding, ...]
    seconds: float
    # The schema verdict of each built object, by a digest of the object and the schemas it was held
    # to: given back to the next check of the environment, it spares validating what did not change.
    verdicts: Mapping[str, tuple[Violation, ...]] = field(default_factory=dict, repr=False, compare=False)


# Paths are built as linked pairs (parent, key) while validating, and flattened only for errors.
_Path = tuple
_Errors = list
_Check = Callable[[Any, _Path, _Errors], None]


def _flatten(path: _Path) -> list[Any]:
    keys: list[Any] = []
    while path:
        path, key = path
        keys.append(key)
    keys.reverse()
    return keys


_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


def format_path(keys: Iterable[Any]) -> str:
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PLAIN_KEY.match(key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out


def _show(value: Any) -> str:
    if value is None:
        return "null"
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}.get(type(value), type(value).__name__)
    if isinstance(value, (dict, list)):
        return kind
    text = json.dumps(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _unknown(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")


def _type_test(types: Sequence[str]) -> Callable[[Any], bool]:
    """JSON Schema's type semantics: an integer is an int or an integral float, never a boolean."""
    python: set[type] = set()
    integer = False
    for name in types:
        if name == "integer":
            python.add(int)
            integer = True
        else:
            found = {"string": (str,), "boolean": (bool,), "null": (type(None),), "object": (dict,),
                     "array": (list,), "number": (int, float)}.get(name)
            if found is None:
                raise ValueError(f"unknown type {name!r}")
            python.update(found)
    frozen = frozenset(python)
    if integer and float not in frozen:
        return lambda v: type(v) in frozen or (type(v) is float and v.is_integer())
    return lambda v: type(v) in frozen


def _same(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _enum_check(values: list[Any]) -> _Check:
    shown = ", ".join(json.dumps(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
    hashable = all(isinstance(v, str) for v in values)
    fast = frozenset(values) if hashable else frozenset()

    def check(v: Any, p: _Path, e: _Errors) -> None:
        if hashable and type(v) is str:
            if v in fast:
                return
        elif any(_same(v, x) for x in values):
            return
        e.append((p, f"must be one of {shown}; found {_show(v)}"))

    return check


def _run_all(checks: list[_Check]) -> _Check:
    if len(checks) == 1:
        return checks[0]

    def run(v: Any, p: _Path, e: _Errors) -> None:
        for check in checks:
            check(v, p, e)

    return run


def _accept(v: Any, p: _Path, e: _Errors) -> None:
    return None


# --- built-in kinds: the JSON Schema (draft 2020-12) subset that kubernetes-validate's files use ---

_ANNOTATIONS = frozenset({
    "description", "format", "default", "$schema", "$id", "x-kubernetes-group-version-kind", "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "x-kubernetes-patch-strategy", "x-kubernetes-patch-merge-key",
    "x-kubernetes-unions",
})
_DEFS_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/", "_definitions.json#/$defs/")


class _JsonSchemaCompiler:
    """Compiles kubernetes-validate's schemas. Only the keywords those files use are accepted; any
    other keyword is refused at compile time, so nothing is silently left unchecked."""

    def __init__(self, definitions: dict[str, Any]):
        self.definitions = definitions
        self.refs: dict[str, _Check] = {}

    def ref(self, ref: str) -> _Check:
        name = next((ref[len(prefix):] for prefix in _DEFS_PREFIXES if ref.startswith(prefix)), None)
        if name is None or name not in self.definitions:
            raise ValueError(f"unresolvable $ref {ref!r}")
        if name not in self.refs:
            # A recursive definition (JSONSchemaProps) reaches itself through this trampoline.
            holder: list[_Check] = []
            self.refs[name] = lambda v, p, e: holder[0](v, p, e)
            holder.append(self.compile(self.definitions[name]))
            self.refs[name] = holder[0]
        return self.refs[name]

    def compile(self, node: dict[str, Any]) -> _Check:
        unknown = set(node) - _ANNOTATIONS - {"type", "enum", "properties", "additionalProperties", "required", "items", "oneOf", "$ref"}
        if unknown:
            raise ValueError(f"unsupported schema keywords {sorted(unknown)}")
        checks: list[_Check] = []
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        if "type" in node:
            types = [node["type"]] if isinstance(node["type"], str) else list(node["type"])
            test = _type_test(types)
            expected = " or ".join(t for t in types if t != "null") or "null"

            def type_check(v: Any, p: _Path, e: _Errors, test=test, expected=expected) -> None:
                if not test(v):
                    e.append((p, f"expected {expected}, found {_show(v)}"))

            checks.append(type_check)
        if "enum" in node:
            checks.append(_enum_check(node["enum"]))
        if "properties" in node or "additionalProperties" in node or "required" in node:
            checks.append(self._object(node))
        if "items" in node:
            item = self.compile(node["items"])

            def items(v: Any, p: _Path, e: _Errors, item=item) -> None:
                if type(v) is list:
                    for index, x in enumerate(v):
                        item(x, (p, index), e)

            checks.append(items)
        if "oneOf" in node:
            checks.append(self._one_of(node["oneOf"]))
        return _run_all(checks) if checks else _accept

    def _object(self, node: dict[str, Any]) -> _Check:
        properties = {key: self.compile(sub) for key, sub in (node.get("properties") or {}).items()}
        known = sorted(properties)
        additional = node.get("additionalProperties", True)
        extra: _Check | None = None if additional is True else self.compile(additional) if isinstance(additional, dict) else None
        closed = additional is False
        required = tuple(node.get("required") or ())

        def check(v: Any, p: _Path, e: _Errors) -> None:
            if type(v) is not dict:
                return
            for key, x in v.items():
                sub = properties.get(key)
                if sub is not None:
                    sub(x, (p, key), e)
                elif closed:
                    e.append(((p, key), _unknown(key, known)))
                elif extra is not None:
                    extra(x, (p, key), e)
            for key in required:
                if key not in v:
                    e.append(((p, key), "required field is missing"))

        return check

    def _one_of(self, branches: list[dict[str, Any]]) -> _Check:
        compiled = [self.compile(b) for b in branches]
        kinds = [b.get("type") for b in branches]
        if all(kinds):
            names = sorted({t for k in kinds for t in ([k] if isinstance(k, str) else k) if t != "null"})
            expected = "expected " + " or ".join(names)
        else:
            expected = "must match exactly one of its alternatives"

        def check(v: Any, p: _Path, e: _Errors) -> None:
            matched = 0
            for branch in compiled:
                scratch: _Errors = []
                branch(v, p, scratch)
                matched += not scratch
            if matched != 1:
                e.append((p, f"{expected}, found {_show(v)}" + (" (matches more than one alternative)" if matched > 1 else "")))

        return check


class KubernetesSchemas:
    """The strict schemas of one Kubernetes version, as kubernetes-validate ships them."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.version = directory.name.split("-")[0].lstrip("v").removesuffix(".0")
        with open(directory / "_definitions.json", encoding="utf-8") as handle:
            self.compiler = _JsonSchemaCompiler(json.load(handle)["$defs"])
        self.kinds: dict[tuple[str, str, str], _Check | None] = {}
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

    def validator(self, api_version: str, kind: str) -> _Check | None:
        """The compiled schema of a built-in kind at this apiVersion, or None when Kubernetes does not serve it."""
        group, version = split_api_version(api_version)
        key = (group, version, kind)
        if key not in self.kinds:
            self.kinds[key] = None
            # kubernetes-validate's file naming: the group's first label, then the version.
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


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


# --- custom resources: structural OpenAPI v3 schemas as the API server applies them ---


class _CrdCompiler:
    """Compiles a CRD version's openAPIV3Schema. Outside logical junctors (allOf, anyOf, oneOf, not) a
    schema is structural and strict: undeclared fields are errors unless preserved. Inside junctors it
    only validates values, as the API server does."""

    patterns: dict[str, re.Pattern[str] | None] = {}

    def compile(self, node: dict[str, Any], junctor: bool = False, root: bool = False) -> _Check:
        checks: list[_Check] = []
        nullable = bool(node.get("nullable"))
        int_or_string = bool(node.get("x-kubernetes-int-or-string"))
        typ = node.get("type")
        if int_or_string:
            expected, test = "integer or string", _type_test(["integer", "string"])
        elif typ:
            expected, test = typ, _type_test([typ])
        else:
            expected, test = "", None
        if test is not None:
            def type_check(v: Any, p: _Path, e: _Errors, test=test, expected=expected) -> None:
                if not test(v) and not (v is None and nullable):
                    e.append((p, f"expected {expected}, found {_show(v)}"))

            checks.append(type_check)
        if "enum" in node:
            enum = _enum_check(node["enum"])
            checks.append(enum if not nullable else lambda v, p, e, enum=enum: v is None or enum(v, p, e))
        number = self._number(node)
        if number:
            checks.append(number)
        string = self._string(node)
        if string:
            checks.append(string)
        if typ == "array" or "items" in node:
            checks.append(self._array(node, junctor))
        if typ == "object" or "properties" in node or "additionalProperties" in node or "required" in node:
            checks.append(self._object(node, junctor, root))
        for keyword in ("allOf", "anyOf", "oneOf"):
            if int_or_string and keyword == "anyOf" and all(set(b) <= {"type", "description"} for b in node[keyword]):
                continue  # the int-or-string idiom: the type check above says it once
            if node.get(keyword):
                checks.append(self._junctor(keyword, [self.compile(b, junctor=True) for b in node[keyword]]))
        if "not" in node:
            negated = self.compile(node["not"], junctor=True)

            def not_check(v: Any, p: _Path, e: _Errors) -> None:
                scratch: _Errors = []
                negated(v, p, scratch)
                if not scratch:
                    e.append((p, "must not match the schema under `not`"))

            checks.append(not_check)
        return _run_all(checks) if checks else _accept

    def _number(self, node: dict[str, Any]) -> _Check | None:
        low, high, step = node.get("minimum"), node.get("maximum"), node.get("multipleOf")
        if low is None and high is None and step is None:
            return None
        low_open, high_open = bool(node.get("exclusiveMinimum")), bool(node.get("exclusiveMaximum"))

        def check(v: Any, p: _Path, e: _Errors) -> None:
            if type(v) not in (int, float):
                return
            if low is not None and (v < low or (low_open and v == low)):
                e.append((p, f"must be {'greater than' if low_open else 'at least'} {low}; found {v}"))
            if high is not None and (v > high or (high_open and v == high)):
                e.append((p, f"must be {'less than' if high_open else 'at most'} {high}; found {v}"))
            if step and not math.isclose(v / step, round(v / step)):
                e.append((p, f"must be a multiple of {step}; found {v}"))

        return check

    def _string(self, node: dict[str, Any]) -> _Check | None:
        low, high, pattern = node.get("minLength"), node.get("maxLength"), node.get("pattern")
        if low is None and high is None and pattern is None:
            return None
        regex = self._regex(pattern) if pattern is not None else None

        def check(v: Any, p: _Path, e: _Errors) -> None:
            if type(v) is not str:
                return
            if low is not None and len(v) < low:
                e.append((p, f"must be at least {low} characters long"))
            if high is not None and len(v) > high:
                e.append((p, f"must be at most {high} characters long"))
            if regex is not None and not regex.search(v):
                e.append((p, f"must match the pattern {pattern}; found {_show(v)}"))

        return check

    def _regex(self, pattern: str) -> re.Pattern[str] | None:
        if pattern not in self.patterns:
            try:
                self.patterns[pattern] = re.compile(pattern)
            except re.error:
                # An RE2 construct Python's engine lacks: the API server checks it, we cannot.
                self.patterns[pattern] = None
        return self.patterns[pattern]

    def _array(self, node: dict[str, Any], junctor: bool) -> _Check:
        item = self.compile(node["items"], junctor) if isinstance(node.get("items"), dict) else None
        low, high = node.get("minItems"), node.get("maxItems")
        unique = node.get("uniqueItems") or node.get("x-kubernetes-list-type") == "set"
        map_keys = tuple(node.get("x-kubernetes-list-map-keys") or ()) if node.get("x-kubernetes-list-type") == "map" else ()

        def check(v: Any, p: _Path, e: _Errors) -> None:
            if type(v) is not list:
                return
            if item is not None:
                for index, x in enumerate(v):
                    item(x, (p, index), e)
            if low is not None and len(v) < low:
                e.append((p, f"must have at least {low} items"))
            if high is not None and len(v) > high:
                e.append((p, f"must have at most {high} items"))
            if unique or map_keys:
                seen: set[str] = set()
                for index, x in enumerate(v):
                    key = json.dumps([x.get(k) for k in map_keys] if map_keys and isinstance(x, dict) else x, sort_keys=True)
                    if key in seen:
                        e.append(((p, index), "duplicate entry" + (f" for key {', '.join(map_keys)}" if map_keys else "")))
                    seen.add(key)

        return check

    def _object(self, node: dict[str, Any], junctor: bool, root: bool) -> _Check:
        skip = {"apiVersion", "kind", "metadata"} if root else set()
        declared = {key: sub for key, sub in (node.get("properties") or {}).items() if key not in skip}
        properties = {key: self.compile(sub, junctor) for key, sub in declared.items()}
        known = sorted(properties)
        additional = node.get("additionalProperties")
        extra = self.compile(additional, junctor) if isinstance(additional, dict) else None
        # The API server drops a null whose schema is not nullable before validating (and then
        # defaults it, if the schema has a default): such a field counts as absent.
        dropped = {key for key, sub in declared.items() if not sub.get("nullable") and "default" not in sub}
        defaulted = {key for key, sub in declared.items() if not sub.get("nullable") and "default" in sub}
        extra_dropped = isinstance(additional, dict) and not additional.get("nullable")
        open_ = junctor or bool(node.get("x-kubernetes-preserve-unknown-fields")) or additional is True
        closed_false = additional is False
        allowed = skip | ({"apiVersion", "kind", "metadata"} if node.get("x-kubernetes-embedded-resource") else set())
        required = tuple(k for k in node.get("required") or () if k not in skip)
        low, high = node.get("minProperties"), node.get("maxProperties")

        def check(v: Any, p: _Path, e: _Errors) -> None:
            if type(v) is not dict:
                return
            for key, x in v.items():
                sub = properties.get(key)
                if sub is not None:
                    if x is None and (key in dropped or key in defaulted):
                        continue
                    sub(x, (p, key), e)
                elif extra is not None:
                    if x is None and extra_dropped:
                        continue
                    extra(x, (p, key), e)
                elif key in allowed:
                    continue
                elif closed_false or not open_:
                    e.append(((p, key), _unknown(key, known)))
            for key in required:
                if key not in v:
                    e.append(((p, key), "required field is missing"))
                elif v[key] is None and key in dropped:
                    e.append(((p, key), "required field is null (the API server drops it)"))
            if low is not None and len(v) < low:
                e.append((p, f"must have at least {low} fields"))
            if high is not None and len(v) > high:
                e.append((p, f"must have at most {high} fields"))

        return check

    @staticmethod
    def _junctor(keyword: str, branches: list[_Check]) -> _Check:
        def check(v: Any, p: _Path, e: _Errors) -> None:
            results = []
            for branch in branches:
                scratch: _Errors = []
                branch(v, p, scratch)
                results.append(scratch)
            passed = sum(not r for r in results)
            if keyword == "allOf" and passed < len(branches):
                e.extend(err for r in results for err in r)
            elif keyword == "anyOf" and not passed:
                e.append((p, f"matches none of the anyOf alternatives (first: {format_path(_flatten(results[0][0][0]))}: {results[0][0][1]})"
                          if results and results[0] else "matches none of the anyOf alternatives"))
            elif keyword == "oneOf" and passed != 1:
                e.append((p, f"must match exactly one of the oneOf alternatives; matches {passed}"))

        return check


_CRD_CACHE: dict[str, _Check] = {}


def clear_caches() -> None:
    """Forget every loaded and compiled schema (for measuring a cold start)."""
    _SCHEMAS.clear()
    _CRD_CACHE.clear()
    _CrdCompiler.patterns.clear()


def compile_crd_schema(schema: dict[str, Any]) -> _Check:
    """The compiled validator of one CRD version's schema, cached by the schema's content."""
    digest = hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if digest not in _CRD_CACHE:
        _CRD_CACHE[digest] = _CrdCompiler().compile(schema, root=True)
    return _CRD_CACHE[digest]


@dataclass
class _Crd:
    name: str
    group: str
    kind: str
    scope: str
    component: str
    versions: dict[str, dict[str, Any] | None]  # served versions and their schemas
    compiled: dict[str, _Check]


class CrdIndex:
    """The CRDs that define custom resources: the environment's own and the GitOps controllers'."""

    def __init__(self, crds: Iterable[tuple[str, dict[str, Any]]]):
        self.by_kind: dict[tuple[str, str], _Crd] = {}
        for component, crd in crds:
            spec = crd.get("spec") or {}
            key = (spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))
            if key in self.by_kind and self.by_kind[key].component != CONTROLLER:
                continue  # a second definition is a duplicate identity; the first one stands
            versions = {v["name"]: (v.get("schema") or {}).get("openAPIV3Schema")
                        for v in spec.get("versions") or () if v.get("served", True)}
            self.by_kind[key] = _Crd(crd["metadata"]["name"], key[0], key[1], spec.get("scope", "Namespaced"), component, versions, {})

    def find(self, group: str, kind: str) -> _Crd | None:
        return self.by_kind.get((group, kind))


class Validator:
    """Validates objects against the Kubernetes schemas and the given CRDs."""

    def __init__(self, kubernetes: KubernetesSchemas, crds: CrdIndex):
        self.kubernetes = kubernetes
        self.crds = crds

    def validate(self, obj: Any) -> list[Violation]:
        errors: _Errors = []
        self._validate(obj, errors)
        return [Violation(format_path(_flatten(path)), message) for path, message in errors]

    def _validate(self, obj: Any, errors: _Errors) -> None:
        if not isinstance(obj, dict):
            errors.append(((), f"expected an object, found {_show(obj)}"))
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


# --- the checks of one environment ---


def _group(obj: dict[str, Any]) -> str:
    return split_api_version(str(obj.get("apiVersion", "")))[0]


def _metadata(obj: Any) -> dict[str, Any]:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _dependencies(catalog: Catalog, name: str) -> set[str]:
    """A component and everything it depends on, transitively."""
    seen = {name}
    stack = [name]
    while stack:
        component = catalog.components.get(stack.pop())
        for dependency in component.depends_on if component else ():
            if dependency not in seen:
                seen.add(dependency)
                stack.append(dependency)
    return seen


def _object_digests(build: EnvironmentBuild, owned: list[tuple[str, dict[str, Any]]], kubernetes: KubernetesSchemas,
                    other_crds: Sequence[dict[str, Any]], gitops_objects: Sequence[dict[str, Any]]) -> list[str] | None:
    """For each owned object, then each GitOps object, a digest of it and of every schema it can be held to
    (the Kubernetes schemas and all the environment's CRDs); None when the owned objects did not all come
    from JSON lines (their digests are of those lines)."""
    per_component = [c.object_digests for c in build.components]
    if any(digests is None for digests in per_component):
        return None
    objects = [digest for digests in per_component for digest in digests]
    schemas = hashlib.sha256()
    definitions = kubernetes.directory / "_definitions.json"
    schemas.update(f"{kubernetes.directory}:{definitions.stat().st_size}:{definitions.stat().st_mtime_ns}".encode())
    schemas.update(Path(__file__).read_bytes())  # the validator itself
    for (_, obj), digest in zip(owned, objects, strict=True):
        if _is_crd(obj):
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
) -> EnvironmentReport:
    """Every check on one environment's built objects (and the GitOps objects that deploy it).

    known holds schema verdicts from an earlier check (EnvironmentReport.verdicts): objects whose digest
    it holds are not validated again."""
    started = time.perf_counter()
    env = build.environment
    prerequisite_crds = load_prerequisite_crds(prerequisite_files(plan.environment(env).environment))
    kubernetes = kubernetes_schemas(plan.platform.kubernetes_version)
    owned: list[tuple[str, dict[str, Any]]] = [(c.name, obj) for c in build.components for obj in c.objects]
    crds = CrdIndex([(name, obj) for name, obj in owned if _is_crd(obj)] + [(CONTROLLER, crd) for crd in controller_crds]
                    + [(PREREQUISITE, crd) for crd in prerequisite_crds])
    validator = Validator(kubernetes, crds)
    findings: list[Finding] = []
    digests = _object_digests(build, owned, kubernetes, [*controller_crds, *prerequisite_crds], gitops_objects)
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

    def scope(obj: dict[str, Any]) -> str:
        group, kind = _group(obj), obj.get("kind", "")
        if kubernetes.is_builtin(group, kind):
            return "Cluster" if (group, kind) in CLUSTER_SCOPED_BUILTINS else "Namespaced"
        crd = crds.find(group, kind)
        return crd.scope if crd else "Namespaced"

    created = SYSTEM_NAMESPACES | {_metadata(obj).get("name") for _, obj in owned
                                   if isinstance(obj, dict) and obj.get("kind") == "Namespace" and _group(obj) == ""}
    closure: dict[str, set[str]] = {}
    gitops = [(GITOPS_COMPONENT, obj) for obj in gitops_objects]
    groups = ((owned, created, 0), (gitops, SYSTEM_NAMESPACES | {plan.platform.gitops.namespace}, len(owned)))
    for objects, namespaces, first in groups:
        seen: dict[tuple[str, str, str, str], str] = {}
        for index, (component, obj) in enumerate(objects, start=first):
            for violation in validate(index, obj):
                finding(component, obj, violation.field, violation.message, "schema")
            if not isinstance(obj, dict) or not isinstance(obj.get("kind"), str):
                continue
            metadata = _metadata(obj)
            group, kind = _group(obj), obj["kind"]
            cluster = scope(obj) == "Cluster"
            namespace = "" if cluster else str(metadata.get("namespace") or "")
            identity = (group, kind, namespace, str(metadata.get("name") or ""))
            if identity in seen:
                finding(component, obj, "metadata.name", f"duplicate object: {kind}.{group or 'core'} {'/'.join(identity[2:]).lstrip('/')} "
                                                         f"is also built by component {seen[identity]}", "duplicate")
            else:
                seen[identity] = component
            if namespace and namespace not in namespaces:
                finding(component, obj, "metadata.namespace", f"namespace {namespace!r} is neither created by environment {env} "
                                                              "nor one every cluster has", "namespace")
            if component == GITOPS_COMPONENT or kubernetes.is_builtin(group, kind):
                continue
            crd = crds.find(group, kind)
            if crd is None or crd.component == PREREQUISITE:
                continue  # no CRD at all is already a schema finding; prerequisites come before the platform
            if component not in closure:
                closure[component] = _dependencies(plan.catalog, component)
            if crd.component not in closure[component]:
                provider = "the GitOps controller" if crd.component == CONTROLLER else f"component {crd.component}"
                finding(component, obj, "kind", f"CRD {crd.name} comes from {provider}, which {component} does not depend on "
                                                "(add it to dependsOn so that the CRD is applied first)", "crd-order")
    return EnvironmentReport(env, len(owned) + len(gitops_objects), tuple(sorted(findings)), time.perf_counter() - started, verdicts)


def load_prerequisite_crds(files: Sequence[Path]) -> list[dict[str, Any]]:
    """The CRDs of the operators an environment needs first (prerequisites/), for validating their custom resources."""
    return [doc for path in files for doc in load_all_plain(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]


def _is_crd(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "CustomResourceDefinition" and _group(obj) == "apiextensions.k8s.io"


def check_objects(
    builds: Sequence[EnvironmentBuild],
    plan: Plan,
    controller_crds: Sequence[dict[str, Any]] = (),
    gitops_objects: Mapping[str, Sequence[dict[str, Any]]] | None = None,
) -> list[Finding]:
    """Every finding of every given environment, sorted."""
    findings: list[Finding] = []
    for build in builds:
        findings.extend(check_environment(build, plan, controller_crds, (gitops_objects or {}).get(build.environment, ())).findings)
    return sorted(findings)
