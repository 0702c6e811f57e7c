"""The reference pages in docs/, generated from the JSON Schemas, the catalog and the argparse parser.

- docs/spec-reference.md: every field of schemas/platform.schema.json, and every setting of each catalog
  component (the `settings` schema in components/<name>/component.yaml);
- docs/catalog-reference.md: every field of a catalog entry (schemas/component.schema.json) and of
  components/releases.yaml (schemas/releases.schema.json);
- docs/cli-reference.md: every verb of `kfgen` with its arguments (kfgen.cli.full_parser).

`python -m kfgen.reference` (`make docs`) writes them; `--check` only says which are out of date (exit 1).
The output depends on nothing but those inputs: fields in schema order, components and verbs in a fixed
order, and no value from the environment or the terminal.

A field's example is, in this order: the first of its schema's `examples`; the first value the shipped
platform.yaml gives it (in document order), or else gives the same field elsewhere (one `$defs` entry
reached by two paths, as `sizing.resources` and `components.<name>.resources`); its default; its `const`
or first `enum` value; else one made from its type (an example of its named format, an integer's
minimum, true, or the first of a fixed list of strings that its pattern accepts). Objects whose fields
are listed below them (and lists or maps of such objects) get no example of their own. The catalog
reference takes its examples from the catalog's entries, by component name, the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from .data import SOURCE_TREE
from .schemas import PATTERN_NAMES

# The checkout whose docs/ these pages belong to (the current folder when kfgen is installed).
PROJECT = SOURCE_TREE or Path.cwd()
SPEC_REFERENCE = Path("docs/spec-reference.md")
CATALOG_REFERENCE = Path("docs/catalog-reference.md")
CLI_REFERENCE = Path("docs/cli-reference.md")

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


# Markdown

def _code(text: str) -> str:
    return f"`{text}`"


def _cell(text: str) -> str:
    """Text for a table cell: no line breaks, pipes escaped; outside code spans, no HTML or emphasis."""
    pieces = text.replace("\n", " ").split("`")
    for index in range(0, len(pieces), 2):  # outside code spans
        pieces[index] = pieces[index].replace("<", "&lt;").replace("*", "\\*")
    return "`".join(pieces).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_cell(c) if c else "—" for c in row) + " |" for row in rows]


def field_table(fields: Sequence[Field]) -> list[str]:
    return _table(["Field", "Type", "Required", "Default", "Description", "Example"], [
        [_code(f.dotted), f.type, "yes" if f.required else "no", f.default.markdown() if f.default else "",
         f.description, f.example.markdown() if f.example else ""]
        for f in fields
    ])


def _header(sources: str) -> list[str]:
    return [f"<!-- Generated by `make docs` (python -m kfgen.reference) from {sources}. Do not edit: change those and run `make docs`. -->", ""]


def _walk_values(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, Mapping):
        for value in node.values():
            yield from _walk_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_values(value)


def _formats_section(roots: Sequence[Mapping[str, Any]]) -> list[str]:
    """The named formats (schemas.PATTERN_NAMES) the schemas at roots use, with their meaning and pattern."""
    patterns = {v["pattern"] for root in roots for v in _walk_values(root) if isinstance(v, Mapping) and v.get("pattern") in PATTERN_NAMES}
    ordered = sorted(patterns, key=lambda p: format_name(PATTERN_NAMES[p]).lower())
    return ["## Value formats", "", "The Type column names these formats; each is checked with the pattern shown.", "",
            *_table(["Format", "Meaning", "Pattern"], [[format_name(PATTERN_NAMES[p]), PATTERN_NAMES[p], _code(p)] for p in ordered]), ""]


# docs/spec-reference.md

def _find(value: Any, path: FieldPath) -> Iterator[Any]:
    """Values at path in a loaded YAML document, in document order."""
    if not path:
        yield value
        return
    head, rest = path[0], path[1:]
    if head == ITEM and isinstance(value, list):
        for item in value:
            yield from _find(item, rest)
    elif head == KEY and isinstance(value, dict):
        for item in value.values():
            yield from _find(item, rest)
    elif isinstance(value, dict) and head in value:
        yield from _find(value[head], rest)


def sampler(document: Any, *alternatives: Callable[[FieldPath], FieldPath]) -> Callable[[FieldPath], Value | None]:
    """The first value document gives a path (or the paths alternatives make of it), as a Value."""
    def sample(path: FieldPath) -> Value | None:
        for candidate in [path, *(alternative(path) for alternative in alternatives)]:
            for found in _find(document, candidate):
                return Value(found)
        return None
    return sample


def spec_reference(platform_schema: Mapping[str, Any], components: Mapping[str, Mapping[str, Any]], example: Any) -> str:
    """docs/spec-reference.md: platform_schema's fields, then each component's settings (components by
    name: its component.yaml loaded), with examples from example (the shipped platform.yaml, loaded)."""
    walker = SchemaWalker(platform_schema, sampler(example))
    fields = walker.fields()
    lines = _header("schemas/platform.schema.json, components/*/component.yaml and platform.yaml")
    lines += [
        "# Spec reference: platform.yaml",
        "",
        str(platform_schema.get("description", "")),
        "",
        "Every field of [`schemas/platform.schema.json`](../schemas/platform.schema.json), then every setting of the catalog's "
        "components. The shipped [`platform.yaml`](../platform.yaml) is a complete example. How to read the tables:",
        "",
        "- **Field** is the dotted path from the top of the file. `[]` stands for any item of a list "
        "(`environments[].name` is the name of each environment), `<name>` for any key of a map "
        "(`components.<name>.enabled`, where `<name>` is a component's name).",
        "- **Required** says whether the field must be present when the object holding it is. Fields not listed are refused, "
        "except inside an object of \"any fields\".",
        "- **Default** is the value used when the field is absent; where it shows `—`, the description says what absence means.",
        "- **Example** is the first of the schema's `examples`, else the value the shipped `platform.yaml` gives the field "
        "(its first occurrence, or that of the same field elsewhere, as `sizing.resources` for `components.<name>.resources`), "
        "else the default, else a value of the field's type. An object whose fields are listed below it has no example of its own.",
        "- Defaults and examples are written as JSON, which is valid YAML.",
        "",
        "Values resolve as catalog defaults, then the platform-wide `components:`, then the environment's `components:`, by deep "
        "merge (mappings merge, other values replace); the result is validated again, so an override is held to the same schema.",
        "",
    ]
    lines += _formats_section([platform_schema, *(entry.get("settings") or {} for entry in components.values())])
    top_level = [f for f in fields if len(f.path) == 1 and not walker.structural(f.schema)]
    lines += ["## Top level", "", *field_table(top_level), ""]
    for section in [f for f in fields if len(f.path) == 1 and walker.structural(f.schema)]:
        lines += [f"## `{section.dotted}`", "", _cell(section.description), "",
                  *field_table([f for f in fields if f.path[:1] == section.path]), ""]
    lines += _settings_section(components, example)
    return "\n".join(lines).rstrip("\n") + "\n"


def _settings_section(components: Mapping[str, Mapping[str, Any]], example: Any) -> list[str]:
    lines = [
        "## Component settings",
        "",
        "Each component of the catalog (`components/<name>/component.yaml`) is configured under `components.<name>` "
        "(platform-wide) or `environments[].components.<name>` (one environment): `enabled`, `replicas`, `resources` and "
        "`images`, above, apply to every component; `settings` takes the component's own fields, listed below for each "
        "component that has any. The same fields are valid under `environments[].components.<name>.settings`. A setting's "
        "default comes from the catalog entry.",
        "",
    ]
    rows = []
    documented = []
    for name in sorted(components):
        entry = components[name]
        has_settings = bool((entry.get("settings") or {}).get("properties"))
        if has_settings:
            documented.append(name)
        rows.append([_code(name), "yes" if entry.get("enabledByDefault", True) else "no", _code(str(entry.get("namespace", ""))),
                     f"[settings](#{_slug(name)})" if has_settings else "", str(entry.get("description", ""))])
    lines += [*_table(["Component", "Enabled by default", "Namespace", "Settings", "Description"], rows), ""]
    for name in documented:
        entry = components[name]
        prefix = ("components", name, "settings")

        def in_environment(path: FieldPath) -> FieldPath:
            return ("environments", ITEM, *path)

        walker = SchemaWalker(entry["settings"], sampler(example, in_environment))
        lines += [f"### {name}", "", _cell(str(entry.get("description", ""))),
                  "", f"Schema: [`components/{name}/component.yaml`](../components/{name}/component.yaml), under `settings`.", "",
                  *field_table(walker.fields(prefix)), ""]
    return lines


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# docs/catalog-reference.md

def catalog_reference(component_schema: Mapping[str, Any], releases_schema: Mapping[str, Any],
                      components: Mapping[str, Mapping[str, Any]], releases: Any) -> str:
    """docs/catalog-reference.md: the fields of a catalog entry and of components/releases.yaml, with examples
    from the catalog's entries (components, by name: each component.yaml loaded) and releases.yaml (loaded)."""
    entries = [components[name] for name in sorted(components)]
    entry_fields = SchemaWalker(component_schema, sampler(entries, lambda path: (ITEM, *path))).fields()
    releases_fields = SchemaWalker(releases_schema, sampler(releases)).fields()
    lines = _header("schemas/component.schema.json and schemas/releases.schema.json")
    lines += [
        "# Catalog reference: components/",
        "",
        "For people who add or change a catalog component. Each component is a folder `components/<name>/` holding "
        "`component.yaml` and the Jinja templates its `patches` name; [`components/releases.yaml`](../components/releases.yaml) "
        "lists the Kubeflow releases the catalog supports. The tables read as in the [spec reference](spec-reference.md); "
        "a field's example comes from the first entry, by component name, that sets it.",
        "",
        *_formats_section([component_schema, releases_schema]),
        "## Catalog entry: `components/<name>/component.yaml`",
        "",
        str(component_schema.get("description", "")),
        "",
        "Schema: [`schemas/component.schema.json`](../schemas/component.schema.json).",
        "",
        *field_table(entry_fields),
        "",
        "## Supported releases: `components/releases.yaml`",
        "",
        str(releases_schema.get("description", "")),
        "",
        "Schema: [`schemas/releases.schema.json`](../schemas/releases.schema.json).",
        "",
        *field_table(releases_fields),
        "",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


# docs/cli-reference.md

@contextmanager
def _bare_environment() -> Iterator[None]:
    """No environment variables while the parser is built: defaults read from them ($KUBECONFIG) stay out."""
    saved = dict(os.environ)
    os.environ.clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cli_parser() -> argparse.ArgumentParser:
    from .cli import full_parser

    full_parser()  # imports every verb's module with the environment in place
    with _bare_environment():
        return full_parser()


def _verbs(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments but help: options in the order they were added, then positionals."""
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]
    return [a for a in actions if a.option_strings] + [a for a in actions if not a.option_strings]


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if isinstance(action.metavar, str):
        return action.metavar
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _usage_part(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"[{_metavar(action)}]" if action.nargs in ("?", "*") else _metavar(action)
    text = action.option_strings[-1] + (f" {_metavar(action)}" if _metavar(action) else "")
    if action.required:
        return text
    return f"[{text}]..." if isinstance(action, argparse._AppendAction) else f"[{text}]"


def _usage(prefix: str, parts: Sequence[str], width: int = 100) -> list[str]:
    lines, line = [], prefix
    for part in parts:
        if len(line) + 1 + len(part) > width and line.strip():
            lines.append(line)
            line = " " * len(prefix)
        line += " " + part if line.strip() else part
    return [*lines, line]


def _default(action: argparse.Action) -> str:
    default = action.default
    if default is None or default is argparse.SUPPRESS or default is False or default == []:
        return ""
    return _code(str(default))


def _option_rows(parser: argparse.ArgumentParser) -> list[list[str]]:
    rows = []
    for action in _options(parser):
        name = ", ".join(_code(o) for o in action.option_strings) if action.option_strings else _code(_metavar(action)) + " (positional)"
        value = _code(_metavar(action)) if _metavar(action) and action.choices is None and action.option_strings else ""
        notes = []
        if action.required:
            notes.append("required")
        if isinstance(action, argparse._AppendAction):
            notes.append("repeatable")
        if not action.option_strings and action.nargs == "?":
            notes.append("optional")
        value = ", ".join(p for p in [value, *notes] if p)
        choices = ", ".join(_code(str(c)) for c in action.choices) if action.choices is not None else ""
        rows.append([name, value, _default(action), choices, str(action.help or "")])
    return rows


# Not in the parser: written here by hand, from tools.py, cli/common.py and the Makefile.
_ENVIRONMENT = [
    ["`KFGEN_SOURCE_CACHE`", "source caches, separated by `:` (`os.pathsep`), used when no `--source-cache` is given; "
                             "default: `../shared/upstream` beside the project"],
    ["`KFGEN_CACHE_DIR`", "the build cache (default: `.kfgen/cache` in the project); its keys hold contents, not paths, "
                          "so checkouts can share one"],
    ["`KFGEN_KUSTOMIZE`, `KFGEN_KUSTOMIZE_WORKER`, `KFGEN_CONFTEST`, `KFGEN_YAML2JSON`",
     "a tool's path; otherwise `.tools/bin/<tool>` in the project, then `PATH` (`make tools` installs them)"],
    ["`KUBECONFIG`", "default of `--kubeconfig` (`apply`, `status`), then `~/.kube/config`"],
    ["`GOGC`, `GOMEMLIMIT`", "when either is set, the Go tools kfgen runs (the kustomize worker, conftest) keep the "
                             "user's garbage collection settings instead of kfgen's fixed heap size"],
    ["`KFGEN_DEBUG`", "`1`: an internal error is raised with its traceback instead of being logged to `.kfgen/kfgen.log`"],
]


def cli_reference(top: argparse.ArgumentParser, summaries: Mapping[str, str]) -> str:
    """docs/cli-reference.md from the full parser (every verb's arguments) and each verb's summary."""
    verbs = _verbs(top)
    global_parts = [_usage_part(a) for a in _options(top)]
    lines = _header("the argparse parser (kfgen.cli.full_parser)")
    lines += [
        "# CLI reference: kfgen",
        "",
        str(top.description or ""),
        "",
        "```",
        *_usage("kfgen", [*global_parts, "VERB", "[options]"]),
        "```",
        "",
        "Run from the project root, or pass `--project DIR`. Every verb also takes `-h`/`--help`. Options of the verb go after it; "
        "the global options before it (`kfgen --output json validate`).",
        "",
        "Exit codes: 0 fine; 1 a check or build failed; 2 bad input or usage (with `file:line:column: error: path: message` "
        "lines); 70 an internal error (one line; the traceback, kfgen's version and the command line go to `.kfgen/kfgen.log`); "
        "130 interrupted.",
        "",
        "## Global options",
        "",
        *_table(["Option", "Value", "Default", "Choices", "Description"], _option_rows(top)),
        "",
        "## Verbs",
        "",
        *_table(["Verb", "What it does"], [[f"[`{name}`](#kfgen-{name})", summaries.get(name, "")] for name in verbs]),
        "",
    ]
    for name, parser in verbs.items():
        summary = _cell(summaries.get(name, ""))
        lines += [f"## kfgen {name}", "", summary[:1].upper() + summary[1:] + ".", "",
                  "```", *_usage(f"kfgen {name}", [_usage_part(a) for a in _options(parser)]), "```", ""]
        rows = _option_rows(parser)
        lines += [*_table(["Option", "Value", "Default", "Choices", "Description"], rows), ""] if rows else []
    lines += ["## Environment variables", "", *_table(["Variable", "What it sets"], _ENVIRONMENT), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# Writing them

def _load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_components(directory: Path) -> dict[str, dict[str, Any]]:
    """Every catalog entry, by folder name."""
    return {path.parent.name: _load_yaml(path) for path in sorted(directory.glob("*/component.yaml"))}


def render_all(root: Path = PROJECT) -> dict[Path, str]:
    """Each reference page (relative to root) and its text, from the project at root."""
    from .cli import COMMANDS

    schemas = root / "schemas"
    components = load_components(root / "components")
    return {
        SPEC_REFERENCE: spec_reference(_load_json(schemas / "platform.schema.json"), components, _load_yaml(root / "platform.yaml")),
        CATALOG_REFERENCE: catalog_reference(_load_json(schemas / "component.schema.json"), _load_json(schemas / "releases.schema.json"),
                                             components, _load_yaml(root / "components" / "releases.yaml")),
        CLI_REFERENCE: cli_reference(cli_parser(), COMMANDS),
    }


def stale(root: Path = PROJECT) -> list[Path]:
    """The reference pages whose committed text differs from what render_all gives."""
    out = []
    for relative, text in render_all(root).items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(relative)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kfgen.reference", description="Write the reference pages in docs/.")
    parser.add_argument("--project", default=str(PROJECT), help="project root (default: this checkout, else the current directory)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    root = Path(args.project).resolve()
    if args.check:
        out_of_date = stale(root)
        for relative in out_of_date:
            sys.stderr.write(f"{relative} is out of date: run `make docs`\n")
        return 1 if out_of_date else 0
    for relative, text in render_all(root).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text, encoding="utf-8")
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
