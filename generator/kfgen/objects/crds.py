"""Custom resources: each is validated against the openAPIV3Schema of the CRD version that defines it.

The rules are the API server's structural ones: a field the schema does not declare is an error unless
`x-kubernetes-preserve-unknown-fields` allows it at that level, and a null the API server would drop
counts as absent. Compiled schemas are cached by content, so the CRDs that every environment shares
are compiled once per process.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..yamlio import load_all_plain
from .compiled import Check, Errors, FieldPath, accept, enum_check, flatten, format_path, run_all, show, type_test, unknown_field

# Who provides a CRD besides the platform's components: a GitOps controller (for gitops/<env>/), or an
# operator the cluster runs before the platform (prerequisites/), whose CRDs every component may use.
CONTROLLER = "(gitops controller)"
PREREQUISITE = "(cluster prerequisite)"
PROVIDED = "(provided by the cluster)"


class _CrdCompiler:
    """Compiles a CRD version's openAPIV3Schema. Outside logical junctors (allOf, anyOf, oneOf, not) a
    schema is structural and strict: undeclared fields are errors unless preserved. Inside junctors it
    only validates values, as the API server does."""

    patterns: dict[str, re.Pattern[str] | None] = {}

    def compile(self, node: dict[str, Any], junctor: bool = False, root: bool = False) -> Check:
        checks: list[Check] = []
        nullable = bool(node.get("nullable"))
        int_or_string = bool(node.get("x-kubernetes-int-or-string"))
        typ = node.get("type")
        test: Callable[[Any], bool] | None
        if int_or_string:
            expected, test = "integer or string", type_test(["integer", "string"])
        elif typ:
            expected, test = typ, type_test([typ])
        else:
            expected, test = "", None
        if test is not None:
            def type_check(v: Any, p: FieldPath, e: Errors, test: Callable[[Any], bool] = test, expected: str = expected) -> None:
                if not test(v) and not (v is None and nullable):
                    e.append((p, f"expected {expected}, found {show(v)}"))

            checks.append(type_check)
        if "enum" in node:
            enum = enum_check(node["enum"])

            def nullable_enum(v: Any, p: FieldPath, e: Errors, enum: Check = enum) -> None:
                if v is not None:
                    enum(v, p, e)

            checks.append(nullable_enum if nullable else enum)
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

            def not_check(v: Any, p: FieldPath, e: Errors) -> None:
                scratch: Errors = []
                negated(v, p, scratch)
                if not scratch:
                    e.append((p, "must not match the schema under `not`"))

            checks.append(not_check)
        return run_all(checks) if checks else accept

    def _number(self, node: dict[str, Any]) -> Check | None:
        low, high, step = node.get("minimum"), node.get("maximum"), node.get("multipleOf")
        if low is None and high is None and step is None:
            return None
        low_open, high_open = bool(node.get("exclusiveMinimum")), bool(node.get("exclusiveMaximum"))

        def check(v: Any, p: FieldPath, e: Errors) -> None:
            if type(v) not in (int, float):
                return
            if low is not None and (v < low or (low_open and v == low)):
                e.append((p, f"must be {'greater than' if low_open else 'at least'} {low}; found {v}"))
            if high is not None and (v > high or (high_open and v == high)):
                e.append((p, f"must be {'less than' if high_open else 'at most'} {high}; found {v}"))
            if step and not math.isclose(v / step, round(v / step)):
                e.append((p, f"must be a multiple of {step}; found {v}"))

        return check

    def _string(self, node: dict[str, Any]) -> Check | None:
        low, high, pattern = node.get("minLength"), node.get("maxLength"), node.get("pattern")
        if low is None and high is None and pattern is None:
            return None
        regex = self._regex(pattern) if pattern is not None else None

        def check(v: Any, p: FieldPath, e: Errors) -> None:
            if type(v) is not str:
                return
            if low is not None and len(v) < low:
                e.append((p, f"must be at least {low} characters long"))
            if high is not None and len(v) > high:
                e.append((p, f"must be at most {high} characters long"))
            if regex is not None and not regex.search(v):
                e.append((p, f"must match the pattern {pattern}; found {show(v)}"))

        return check

    def _regex(self, pattern: str) -> re.Pattern[str] | None:
        if pattern not in self.patterns:
            try:
                self.patterns[pattern] = re.compile(pattern)
            except re.error:
                # An RE2 construct Python's engine lacks: the API server checks it, we cannot.
                self.patterns[pattern] = None
        return self.patterns[pattern]

    def _array(self, node: dict[str, Any], junctor: bool) -> Check:
        item = self.compile(node["items"], junctor) if isinstance(node.get("items"), dict) else None
        low, high = node.get("minItems"), node.get("maxItems")
        unique = node.get("uniqueItems") or node.get("x-kubernetes-list-type") == "set"
        map_keys = tuple(node.get("x-kubernetes-list-map-keys") or ()) if node.get("x-kubernetes-list-type") == "map" else ()

        def check(v: Any, p: FieldPath, e: Errors) -> None:
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

    def _object(self, node: dict[str, Any], junctor: bool, root: bool) -> Check:
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

        def check(v: Any, p: FieldPath, e: Errors) -> None:
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
                    e.append(((p, key), unknown_field(key, known)))
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
    def _junctor(keyword: str, branches: list[Check]) -> Check:
        def check(v: Any, p: FieldPath, e: Errors) -> None:
            results = []
            for branch in branches:
                scratch: Errors = []
                branch(v, p, scratch)
                results.append(scratch)
            passed = sum(not r for r in results)
            if keyword == "allOf" and passed < len(branches):
                e.extend(err for r in results for err in r)
            elif keyword == "anyOf" and not passed:
                e.append((p, f"matches none of the anyOf alternatives (first: {format_path(flatten(results[0][0][0]))}: {results[0][0][1]})"
                          if results and results[0] else "matches none of the anyOf alternatives"))
            elif keyword == "oneOf" and passed != 1:
                e.append((p, f"must match exactly one of the oneOf alternatives; matches {passed}"))

        return check


_CRD_CACHE: dict[str, Check] = {}


def clear_crd_caches() -> None:
    _CRD_CACHE.clear()
    _CrdCompiler.patterns.clear()


def compile_crd_schema(schema: dict[str, Any]) -> Check:
    """The compiled validator of one CRD version's schema, cached by the schema's content."""
    digest = hashlib.sha256(json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    if digest not in _CRD_CACHE:
        _CRD_CACHE[digest] = _CrdCompiler().compile(schema, root=True)
    return _CRD_CACHE[digest]


@dataclass
class Crd:
    name: str
    group: str
    kind: str
    scope: str
    component: str
    versions: dict[str, dict[str, Any] | None]  # served versions and their schemas
    compiled: dict[str, Check]


class CrdIndex:
    """The CRDs that define custom resources: the environment's own and the GitOps controllers'."""

    def __init__(self, crds: Iterable[tuple[str, dict[str, Any]]]):
        self.by_kind: dict[tuple[str, str], Crd] = {}
        for component, crd in crds:
            spec = crd.get("spec") or {}
            key = (spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))
            if key in self.by_kind and self.by_kind[key].component != CONTROLLER:
                continue  # a second definition is a duplicate identity; the first one stands
            versions = {v["name"]: (v.get("schema") or {}).get("openAPIV3Schema")
                        for v in spec.get("versions") or () if v.get("served", True)}
            self.by_kind[key] = Crd(crd["metadata"]["name"], key[0], key[1], spec.get("scope", "Namespaced"), component, versions, {})

    def find(self, group: str, kind: str) -> Crd | None:
        return self.by_kind.get((group, kind))


def load_prerequisite_crds(files: Sequence[Path]) -> list[dict[str, Any]]:
    """The CRDs of the operators an environment needs first (prerequisites/), for validating their custom resources."""
    return [doc for path in files for doc in load_all_plain(path.read_text(encoding="utf-8"))
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"]
