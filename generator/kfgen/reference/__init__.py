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
import sys
from pathlib import Path
from typing import Any

import yaml

from ..data import SOURCE_TREE
from .cli_page import cli_parser, cli_reference
from .fields import SchemaWalker

__all__ = ["CATALOG_REFERENCE", "CLI_REFERENCE", "SPEC_REFERENCE", "SchemaWalker", "main", "render_all", "sampler", "stale"]
from .schema_pages import catalog_reference, sampler, spec_reference

# The checkout whose docs/ these pages belong to (the current folder when kfgen is installed).
PROJECT = SOURCE_TREE or Path.cwd()
SPEC_REFERENCE = Path("docs/spec-reference.md")
CATALOG_REFERENCE = Path("docs/catalog-reference.md")
CLI_REFERENCE = Path("docs/cli-reference.md")


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
    from ..cli import COMMANDS

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


