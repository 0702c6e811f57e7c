"""The generated references in docs/ (kfgen.reference, `make docs`) match the schemas, the catalog and the CLI,
cover every field and flag, and the project's Markdown links lead somewhere."""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from kfgen import reference
from kfgen.cli import COMMANDS, full_parser

PROJECT = Path(__file__).resolve().parents[1]
README_LIMIT = 12288


def schema(name: str) -> dict[str, Any]:
    return json.loads((PROJECT / "schemas" / name).read_text(encoding="utf-8"))


def schema_paths(root: dict[str, Any]) -> list[str]:
    """Every property path of a JSON Schema, written as the references write them: `[]` for a list's items,
    `<name>` for a map's entries. Kept apart from kfgen.reference's walker on purpose."""
    paths: list[str] = []

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = {**root["$defs"][node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def walk(node: dict[str, Any], prefix: str, depth: int) -> None:
        assert depth < 20, f"{prefix}: the schema nests deeper than expected (a recursive $ref?)"
        node = resolve(node)
        branches = [resolve(b) for key in ("allOf", "anyOf", "oneOf") for b in node.get(key, [])]
        for properties in [node.get("properties", {})] + [b.get("properties", {}) for b in branches]:
            for name, child in properties.items():
                path = f"{prefix}.{name}" if prefix else name
                paths.append(path)
                walk(child, path, depth + 1)
        if isinstance(node.get("additionalProperties"), dict):
            paths.append(f"{prefix}.<name>")
            walk(node["additionalProperties"], f"{prefix}.<name>", depth + 1)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{prefix}[]", depth + 1)

    walk(root, "", 0)
    return paths


def components() -> dict[str, dict[str, Any]]:
    return {p.parent.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((PROJECT / "components").glob("*/component.yaml"))}


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    return reference.render_all(PROJECT)


def test_committed_references_are_up_to_date(generated: dict[Path, str]) -> None:
    for relative, text in generated.items():
        path = PROJECT / relative
        assert path.is_file(), f"{relative} is missing: run `make docs`"
        assert path.read_text(encoding="utf-8") == text, f"{relative} is out of date: run `make docs` and commit the result"


def test_every_platform_field_is_in_the_spec_reference(generated: dict[Path, str]) -> None:
    text = generated[reference.SPEC_REFERENCE]
    paths = schema_paths(schema("platform.schema.json"))
    assert len(paths) > 100 and "environments[].tls.mode" in paths and "components.<name>.images[].digest" in paths
    missing = [p for p in paths if f"| `{p}` |" not in text]
    assert not missing, f"not in {reference.SPEC_REFERENCE}: {missing}"


def test_every_component_setting_is_in_the_spec_reference(generated: dict[Path, str]) -> None:
    text = generated[reference.SPEC_REFERENCE]
    with_settings = {name: entry for name, entry in components().items() if entry["settings"].get("properties")}
    assert {"istio", "notebook-controller"} <= set(with_settings)
    for name, entry in with_settings.items():
        paths = [f"components.{name}.settings.{p}" for p in schema_paths(entry["settings"])]
        missing = [p for p in paths if f"| `{p}` |" not in text]
        assert not missing, f"settings of {name} not in {reference.SPEC_REFERENCE}: {missing}"
    for name in components():
        assert f"| `{name}` |" in text, f"component {name} is not in the components table"


def test_every_catalog_field_is_in_the_catalog_reference(generated: dict[Path, str]) -> None:
    text = generated[reference.CATALOG_REFERENCE]
    paths = schema_paths(schema("component.schema.json")) + schema_paths(schema("releases.schema.json"))
    missing = [p for p in paths if f"| `{p}` |" not in text]
    assert not missing, f"not in {reference.CATALOG_REFERENCE}: {missing}"


def verb_sections(text: str) -> dict[str, str]:
    """Each verb's section, as plain text (HTML entities decoded)."""
    parts = re.split(r"^## kfgen (\S+)$", html.unescape(text), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_verb_and_flag_is_in_the_cli_reference(generated: dict[Path, str]) -> None:
    text = generated[reference.CLI_REFERENCE]
    sections = verb_sections(text)
    assert list(sections) == list(COMMANDS)
    top = full_parser()
    verbs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in verbs.items():
        assert COMMANDS[name][1:] + "." in sections[name], f"{name}: its summary is missing"
        assert f"kfgen {name}" in sections[name].split("```")[1], f"{name}: its usage is missing"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            names = action.option_strings or [action.dest]
            for flag in names:
                assert f"`{flag}`" in sections[name], f"kfgen {name} {flag} is not in {reference.CLI_REFERENCE}"
            if action.help:
                assert action.help in sections[name], f"kfgen {name} {names[0]}: its help text is missing"
    global_options = text.split("## Global options")[1].split("## Verbs")[0]
    assert "`--output`" in global_options and "`github`" in global_options


def test_fields_have_descriptions_and_valid_examples() -> None:
    """Every documented field says what it is, and its example is a value its schema accepts."""
    platform = schema("platform.schema.json")
    walkers = [(platform, reference.SchemaWalker(platform, reference.sampler(yaml.safe_load((PROJECT / "platform.yaml").read_text()))))]
    walkers += [(entry["settings"], reference.SchemaWalker(entry["settings"])) for entry in components().values()]
    for name in ("component.schema.json", "releases.schema.json"):
        walkers.append((schema(name), reference.SchemaWalker(schema(name))))
    checked = 0
    for root, walker in walkers:
        for field in walker.fields():
            assert field.description, f"{field.dotted}: add a description to its schema"
            if field.example is None:
                assert walker.structural(field.schema), f"{field.dotted}: no example"
                continue
            validator = jsonschema.Draft202012Validator({**field.schema, "$defs": root.get("$defs", {})})
            errors = [e.message for e in validator.iter_errors(field.example.value)]
            assert not errors, f"{field.dotted}: example {field.example.value!r} is invalid: {errors}"
            checked += 1
    assert checked > 150


def copy_inputs(target: Path) -> Path:
    for folder in ("schemas", "components", "docs"):
        shutil.copytree(PROJECT / folder, target / folder)
    shutil.copy(PROJECT / "platform.yaml", target / "platform.yaml")
    return target


def test_a_schema_change_changes_the_reference_and_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_inputs(tmp_path)
    assert reference.stale(root) == []
    path = root / "schemas" / "platform.schema.json"
    changed = json.loads(path.read_text(encoding="utf-8"))
    changed["$defs"]["tls"]["properties"]["minimumVersion"] = {"description": "Oldest TLS version the gateway accepts.", "enum": ["1.2", "1.3"]}
    changed["properties"]["kubernetes"]["properties"]["version"]["description"] = "Changed."
    path.write_text(json.dumps(changed, indent=2) + "\n", encoding="utf-8")

    assert reference.stale(root) == [reference.SPEC_REFERENCE]
    assert reference.main(["--check", "--project", str(root)]) == 1
    assert "docs/spec-reference.md is out of date: run `make docs`" in capsys.readouterr().err
    text = reference.render_all(root)[reference.SPEC_REFERENCE]
    assert "| `environments[].tls.minimumVersion` | one of `1.2`, `1.3` | no | — | Oldest TLS version the gateway accepts. | `\"1.2\"` |" in text
    assert "| Changed. |" in text

    assert reference.main(["--project", str(root)]) == 0
    assert reference.stale(root) == []
    assert (root / reference.SPEC_REFERENCE).read_text(encoding="utf-8") == text


def test_a_catalog_setting_changes_the_reference(tmp_path: Path) -> None:
    root = copy_inputs(tmp_path)
    path = root / "components" / "katib" / "component.yaml"
    entry = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry["settings"]["properties"]["trialTimeoutMinutes"] = {"description": "Minutes a trial may run.", "type": "integer", "minimum": 1,
                                                              "default": 60}
    path.write_text(yaml.safe_dump(entry, sort_keys=False), encoding="utf-8")
    assert reference.stale(root) == [reference.SPEC_REFERENCE]
    text = reference.render_all(root)[reference.SPEC_REFERENCE]
    assert "### katib" in text and "[settings](#katib)" in text
    assert "| `components.katib.settings.trialTimeoutMinutes` | integer (at least 1) | no | `60` | Minutes a trial may run. | `60` |" in text


def test_a_new_flag_changes_the_cli_reference() -> None:
    parser = full_parser()
    before = reference.cli_reference(parser, COMMANDS)
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    verbs["graph"].add_argument("--direction", choices=["TB", "LR"], default="TB", help="the layout's direction")
    after = reference.cli_reference(parser, COMMANDS)
    assert after != before
    assert "| `--direction` | — | `TB` | `TB`, `LR` | the layout's direction |" in verb_sections(after)["graph"]
    assert "[--direction {TB,LR}]" in verb_sections(after)["graph"]


def test_the_cli_reference_does_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch, generated: dict[Path, str]) -> None:
    monkeypatch.setenv("KUBECONFIG", "/home/someone/.kube/other")
    monkeypatch.setenv("COLUMNS", "40")
    text = reference.cli_reference(reference.cli_parser(), COMMANDS)
    assert "/home/someone" not in text
    assert text == generated[reference.CLI_REFERENCE]


# Markdown of the project: README, guides, references

def markdown_files() -> list[Path]:
    files = [PROJECT / name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "bench/README.md")]
    return [f for f in files if f.is_file()] + sorted((PROJECT / "docs").rglob("*.md"))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        while slug in found:
            slug += "-1"
        found.add(slug)
    return found


def test_relative_links_resolve() -> None:
    files = markdown_files()
    assert PROJECT / "docs" / "spec-reference.md" in files and PROJECT / "docs" / "guides" / "gitops.md" in files
    broken = []
    for source in files:
        text = re.sub(r"^```.*?^```", "", source.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
        text = re.sub(r"`[^`\n]*`", "", text)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (source.parent / file_part).resolve() if file_part else source
            if not resolved.exists():
                broken.append(f"{source.relative_to(PROJECT)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{source.relative_to(PROJECT)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_readme_is_at_most_12_kib() -> None:
    size = (PROJECT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move detail into docs/"
