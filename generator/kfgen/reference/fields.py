"""A JSON Schema walked into the fields a reference page lists: path, type, constraints, default,
description and example (the rule for examples is in the package docstring)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..schemas import PATTERN_NAMES
from .markdown import _code

FieldPath = tuple[str, ...]  # a field's path: property names, ITEM for a list's items, KEY for a map's entries
ITEM = "[]"
KEY = "<name>"

# Examples of the named formats (schemas.PATTERN_NAMES), by short name, for fields that have no other.
_FORMAT_EXAMPLES = {
    "DNS-1123 label": "example",
    "DNS name": "kubeflow.example.com",
    "email address": "user@example.com",
    "Kubernetes quantity": "1",
    "image digest": "sha256:" + "0123456789abcdef" * 4,
    "Kubernetes minor version": "1.33",
    "https:// URL": "https://example.com",
    "registry": "registry.example.com/mirror",
    "git repository URL": "https://git.example.com/ml-platform.git",
    "git repository URL that ends in .git": "https://git.example.com/kubeflow/manifests.git",
    "branch name template": "deploy/{env}",
}
# Strings tried, in order, for a string field of no named format: the first its pattern accepts.
_STRING_CANDIDATES = ("example", "1h", "https://example.com", "example.yaml.j2", "github.com/example/repo", "1", "Example")


@dataclass(frozen=True)
class Value:
    """A default or example value (which may itself be null)."""

    value: Any

    def markdown(self) -> str:
        return _code(json.dumps(self.value, ensure_ascii=False))


@dataclass(frozen=True)
class Field:
    """One documented field: where it is, what it takes, and what it means."""

    path: FieldPath
    schema: Mapping[str, Any]  # with its own $ref resolved (nested ones stay references into the root's $defs)
    type: str
    required: bool
    default: Value | None
    description: str
    example: Value | None
    # The $defs entry whose properties hold the field ("" for none) and the path from it: fields that share one
    # are the same field in different places (sizing.resources and components.<name>.resources, say).
    definition: tuple[str, FieldPath]

    @property
    def dotted(self) -> str:
        return dotted(self.path)


def dotted(path: FieldPath) -> str:
    """environments[].tls.mode, components.<name>.enabled."""
    text = ""
    for segment in path:
        text += segment if segment == ITEM or not text else "." + segment
    return text


class SchemaWalker:
    """Walks a JSON Schema (draft 2020-12) into Fields: properties, `$ref`s into `$defs`, list items,
    `additionalProperties` maps, and the properties of `allOf`/`anyOf`/`oneOf` branches."""

    def __init__(self, root: Mapping[str, Any], sample: Callable[[FieldPath], Value | None] = lambda path: None):
        self.root = root
        self.sample = sample

    def resolve(self, node: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """node with its $ref replaced by what it points to (node's own keywords win), and the $defs name."""
        if "$ref" not in node:
            return dict(node), None
        reference = str(node["$ref"])
        if not reference.startswith("#/$defs/"):
            raise ValueError(f"only references into #/$defs are documented, not {reference!r}")
        name = reference.removeprefix("#/$defs/")
        target, _ = self.resolve(self.root["$defs"][name])
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}, name

    def fields(self, prefix: FieldPath = ()) -> list[Field]:
        """Every field below the root, in schema order, their paths starting with prefix, with their examples."""
        fields = self._children(dict(self.root), prefix, None, frozenset(), ("", ()))
        same: dict[tuple[str, FieldPath], list[FieldPath]] = {}
        for field in fields:
            if field.definition[0]:
                same.setdefault(field.definition, []).append(field.path)
        return [replace(field, example=self.example(field, same.get(field.definition, []))) for field in fields]

    def _field(self, node: Mapping[str, Any], path: FieldPath, required: bool, inherited: Value | None, seen: frozenset[str],
               definition: tuple[str, FieldPath]) -> list[Field]:
        schema, name = self.resolve(node)
        if name is not None and name in seen:  # a recursive definition: documented once, where it first appears
            return [Field(path, schema, "object (see above)", required, None, _description(schema), None, definition)]
        default = Value(schema["default"]) if "default" in schema else inherited
        description = _description(schema)
        if not description and isinstance(schema.get("items"), Mapping):  # a list says what its items are
            description = _description(self.resolve(schema["items"])[0])
        field = Field(path, schema, self.type_text(schema), required, default, description, None, definition)
        below = (name, ()) if name else definition
        return [field, *self._children(schema, path, default, seen | {name} if name else seen, below)]

    def _children(self, schema: Mapping[str, Any], path: FieldPath, default: Value | None, seen: frozenset[str],
                  definition: tuple[str, FieldPath]) -> list[Field]:
        out: list[Field] = []
        required = set(schema.get("required", []))

        def within(segment: str) -> tuple[str, FieldPath]:
            return definition[0], definition[1] + (segment,)

        for key, node in self._properties(schema).items():
            inherited = Value(default.value[key]) if default and isinstance(default.value, dict) and key in default.value else None
            out += self._field(node, path + (key,), key in required, inherited, seen, within(key))
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            out += self._field(extra, path + (KEY,), False, None, seen, within(KEY))
        items = schema.get("items")
        if isinstance(items, Mapping):
            resolved, name = self.resolve(items)
            if name is None or name not in seen:
                below = (name, ()) if name else within(ITEM)
                out += self._children(resolved, path + (ITEM,), None, seen | {name} if name else seen, below)
        return out

    def _properties(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        properties = dict(schema.get("properties", {}))
        for branch in _branches(schema):
            for key, node in self.resolve(branch)[0].get("properties", {}).items():
                properties.setdefault(key, node)
        return properties

    def structural(self, schema: Mapping[str, Any]) -> bool:
        """Whether the fields below it are documented: an object with properties, or a list or map of them."""
        if self._properties(schema):
            return True
        for key in ("items", "additionalProperties"):
            inner = schema.get(key)
            if isinstance(inner, Mapping) and self.structural(self.resolve(inner)[0]):
                return True
        return False

    def example(self, field: Field, same: Sequence[FieldPath]) -> Value | None:
        """The field's example, by the rule in the module's docstring; same: the paths of the same field elsewhere."""
        if self.structural(field.schema):
            return None
        if field.schema.get("examples"):
            return Value(field.schema["examples"][0])
        for path in [field.path, *(p for p in same if p != field.path)]:
            sampled = self.sample(path)
            if sampled is not None:
                return sampled
        if field.default is not None:
            return field.default
        return self.made_up(field.schema)

    def made_up(self, schema: Mapping[str, Any]) -> Value | None:
        """A value of the schema's type (see the module's docstring); None when none of the candidates fits."""
        if "const" in schema:
            return Value(schema["const"])
        if schema.get("enum"):
            return Value(schema["enum"][0])
        kinds = _types(schema)
        if "string" in kinds:
            pattern = schema.get("pattern")
            named = _FORMAT_EXAMPLES.get(format_name(PATTERN_NAMES[pattern])) if pattern in PATTERN_NAMES else None
            for candidate in ([named] if named else []) + list(_STRING_CANDIDATES):
                if (pattern is None or re.search(pattern, candidate)) and len(candidate) >= schema.get("minLength", 0):
                    return Value(candidate)
            return None
        if "integer" in kinds or "number" in kinds:
            low, high = schema.get("minimum", 1), schema.get("maximum", None)
            return Value(max(low, 1) if high is None or max(low, 1) <= high else low)
        if "boolean" in kinds:
            return Value(True)
        if "array" in kinds:
            items = schema.get("items")
            item = self.made_up(self.resolve(items)[0]) if isinstance(items, Mapping) else None
            return Value([item.value] if item else [])
        if "object" in kinds:
            extra = schema.get("additionalProperties")
            entry = self.made_up(self.resolve(extra)[0]) if isinstance(extra, Mapping) else None
            return Value({"example": entry.value} if entry else {})
        return None

    def type_text(self, schema: Mapping[str, Any]) -> str:
        """What values a field takes, in words: its type and constraints."""
        if "const" in schema:
            return f"constant {_code(json.dumps(schema['const']))}"
        if "enum" in schema:
            return "one of " + ", ".join(_code(v if isinstance(v, str) else json.dumps(v)) for v in schema["enum"])
        kinds = _types(schema)
        words = []
        for kind in kinds:
            if kind == "array":
                items = schema.get("items")
                words.append("list of " + (self.type_text(self.resolve(items)[0]) if isinstance(items, Mapping) else "any values"))
            elif kind == "object":
                extra = schema.get("additionalProperties")
                if isinstance(extra, Mapping):
                    names = schema.get("propertyNames")
                    key = "name"
                    if isinstance(names, Mapping):
                        key_format = _pattern_text(self.resolve(names)[0].get("pattern"))
                        key = f"name ({key_format})" if key_format else key
                    words.append(f"map of {key} to {self.type_text(self.resolve(extra)[0])}")
                elif self._properties(schema) or extra is False:
                    words.append("object")
                else:
                    words.append("object (any fields)")
            else:
                words.append(kind)
        text = " or ".join(words) if words else "any value"
        constraints = _constraints(schema)
        if not constraints:
            return text
        return f"{text}, {', '.join(constraints)}" if text.endswith(")") else f"{text} ({'; '.join(constraints)})"


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [b for key in ("allOf", "anyOf", "oneOf") for b in schema.get(key, []) if isinstance(b, Mapping)]


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [str(t) for t in declared]
    if "properties" in schema or "additionalProperties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def format_name(meaning: str) -> str:
    """The short name of a pattern's meaning: 'a DNS-1123 label (lower-case ...)' -> 'DNS-1123 label'."""
    short = re.split(r" \(|, ", meaning, maxsplit=1)[0]
    return re.sub(r"^(a|an) ", "", short)


def _pattern_text(pattern: str | None) -> str:
    if pattern is None:
        return ""
    return format_name(PATTERN_NAMES[pattern]) if pattern in PATTERN_NAMES else f"matching {_code(pattern)}"


def _constraints(schema: Mapping[str, Any]) -> list[str]:
    out = []
    if "pattern" in schema:
        out.append(_pattern_text(schema["pattern"]))
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        out.append(f"{low} to {high}")
    elif low is not None:
        out.append(f"at least {low}")
    elif high is not None:
        out.append(f"at most {high}")
    for unit, low_key, high_key in (("characters", "minLength", "maxLength"), ("items", "minItems", "maxItems"),
                                    ("entries", "minProperties", "maxProperties")):
        low, high = schema.get(low_key), schema.get(high_key)
        if low is not None and high is not None:
            out.append(f"{low} to {high} {unit}")
        elif low is not None:
            out.append(f"at least {low} {_SINGULAR[unit] if low == 1 else unit}")
        elif high is not None:
            out.append(f"at most {high} {unit}")
    if schema.get("uniqueItems"):
        out.append("no duplicates")
    forbidden = schema.get("not")
    if isinstance(forbidden, Mapping) and "const" in forbidden:
        out.append(f"not {_code(json.dumps(forbidden['const']))}")
    if isinstance(forbidden, Mapping) and "pattern" in forbidden:
        out.append(f"not matching {_code(forbidden['pattern'])}")
    return out


_SINGULAR = {"characters": "character", "items": "item", "entries": "entry"}


def _description(schema: Mapping[str, Any]) -> str:
    """The schema's description, then what its anyOf/oneOf/not say about which fields go together."""
    parts = [" ".join(str(schema.get("description", "")).split())]
    for key, words in (("anyOf", "At least one of"), ("oneOf", "Exactly one of")):
        branches = schema.get(key, [])
        if branches and all(set(b) == {"required"} for b in branches):
            names = [name for b in branches for name in b["required"]]
            parts.append(f"{words} {', '.join(_code(n) for n in names)}.")
    forbidden = schema.get("not")
    if isinstance(forbidden, Mapping) and set(forbidden) == {"required"}:
        names = forbidden["required"]
        parts.append(f"Not {'both' if len(names) == 2 else 'all of'} {' and '.join(_code(n) for n in names)}.")
    return " ".join(p for p in parts if p)


