"""docs/spec-reference.md and docs/catalog-reference.md, from the schemas, the catalog and their examples."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..schemas import PATTERN_NAMES
from .fields import ITEM, KEY, Field, FieldPath, SchemaWalker, Value, format_name
from .markdown import _cell, _code, _header, _table


def field_table(fields: Sequence[Field]) -> list[str]:
    return _table(["Field", "Type", "Required", "Default", "Description", "Example"], [
        [_code(f.dotted), f.type, "yes" if f.required else "no", f.default.markdown() if f.default else "",
         f.description, f.example.markdown() if f.example else ""]
        for f in fields
    ])


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


