"""The fast paths give exactly what the slow ones give, and stay fast.

The YAML writer in yamlio handles the common shapes itself and leaves everything else to PyYAML
(libyaml); these tests hold it to libyaml's bytes on tricky values, on random documents built from
them, and on the whole rendered tree. The catalog and spec remembered in the build cache equal a
fresh load, and a command on unchanged inputs does not import what only validation needs.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PROJECT
from kfgen import yamlio
from kfgen.buildcache import BuildCache
from kfgen.catalog import load_catalog
from kfgen.inputcache import load_inputs
from kfgen.output import write_tree
from kfgen.plan import make_plan
from kfgen.render import RenderedTree, render
from kfgen.spec import load_platform


def libyaml(data: Any) -> str:
    return yaml.dump(data, **yamlio._DUMP_OPTIONS)


# Strings that look like other types, carry indicators, quotes, spaces, breaks, unicode or are long.
TRICKY_STRINGS = [
    "", " ", "a", "true", "True", "TRUE", "false", "yes", "no", "on", "off", "y", "n", "null", "Null", "~",
    "0", "1", "-1", "+1", "007", "0x1F", "0o17", "0b101", "1_000", "1.5", "-1.5", ".5", "1e3", "1.0e+3",
    ".inf", "-.inf", ".nan", "1:30", "190:20:30", "2024-01-01", "2024-01-01T10:00:00Z", "=", "<<",
    "-", "--", "---", "...", "...a", "---a", "-a", "- a", "?", "?a", "? a", ":", ":a", "a:", "a:b", "a: b",
    "a :b", "#", "a#b", "a #b", "#a", "&a", "*a", "*", "!a", "|", ">", "'a'", '"a"', "a'b", 'a"b', "%a",
    "@a", "`a", ",a", "a,b", "[a]", "a[b]", "{a}", "a{b}", "a}", "a]", "a?", "a b", "a  b", " a", "a ",
    "a\tb", "a\nb", "a\n", "\na", "a\r\nb", "a\x85b", "a\u2028b", "\ufeffa", "é", "naïve", "日本", "a\x00b",
    "a\x7fb", "https://example.com/path?x=1&y=2", "docker.io/library/nginx:1.27", "nginx@sha256:" + "a" * 64,
    "^(a|b)$", ".webhooks[]?.clientConfig.caBundle", "$(VAR)", "${VAR}", "a=b", "a;b", "a<b>c", "a~b",
    "x" * 99, "x" * 100, "x" * 101, "x" * 130, "word " * 30, ("word " * 19) + "word", "a b " * 40 + "end",
    "kustomize.config.k8s.io/v1beta1", "0.0.0.0:5556", "100m", "256Mi", "1Gi", "v1.2.3", "1.33",
]
OTHER_SCALARS: list[Any] = [None, True, False, 0, 1, -7, 10**20, 1.0, 0.5, -2.5, 1e20, 1e-7, float("inf"), float("nan")]
KEYS = ["a", "apiVersion", "metadata", "app.kubernetes.io/name", "true", "1", "", "a b", "a: b", "-", "k" * 120,
        "k" * 130, "é", "x" * 99]


@pytest.mark.parametrize("value", TRICKY_STRINGS + OTHER_SCALARS)
def test_scalar_in_every_position(value: Any) -> None:
    for document in ({"key": value}, [value], {"key": [value]}, [[value]], [{"key": value, "other": value}],
                     {"k" * 90: value}, {"outer": {"inner": {"key": value}}}, {"key": [[{"key": value}]]}):
        assert yamlio.dump(document) == libyaml(document), document


@pytest.mark.parametrize("key", KEYS + [1, True, None, 1.5])
def test_keys(key: Any) -> None:
    for document in ({key: "v"}, {key: {key: [1]}}, [{key: {}}]):
        assert yamlio.dump(document) == libyaml(document), document


def test_documents_kept_by_the_writer_are_told_apart_by_type() -> None:
    """The writer keeps what it wrote, by the document's repr: documents equal in Python or alike in
    text (1, 1.0, True, '1', (1,), [1]) each come out as libyaml writes them, in either order and again."""
    values: list[Any] = [1, 1.0, True, "1", "true", None, "null", (1,), [1], {"1": 1}, {1: 1}, {True: 1}]
    for order in (values, list(reversed(values)), values):
        for value in order:
            document = {"key": value}
            assert yamlio.dump(document) == libyaml(document), document
            assert yamlio.dump_all([document, [value]]) == libyaml_all([document, [value]]), document


def libyaml_all(documents: list[Any]) -> str:
    return yaml.dump_all(documents, **yamlio._DUMP_OPTIONS)


def test_empty_collections_and_top_level_shapes() -> None:
    for document in ({}, [], "text", 1, None, {"a": {}}, {"a": []}, [{}], [[]], [[], {}], {"a": [{}, []]},
                     ({"a": 1},), {"a": (1, 2)}, [[[["deep"]]]], {"a": {"b": {"c": {"d": []}}}}):
        assert yamlio.dump(document) == libyaml(document), document
    streams = [[{"a": 1}, {"b": [1, 2]}], [{"a": "x\ny"}, {"b": 1}], [{"a": 1}], [[1], {"b": None}]]
    for documents in streams:
        assert yamlio.dump_all(documents) == yaml.dump_all(documents, **yamlio._DUMP_OPTIONS), documents


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.5:
        return rng.choice(TRICKY_STRINGS + OTHER_SCALARS)
    size = rng.randrange(0, 4)
    if roll < 0.75:
        return {rng.choice(KEYS + TRICKY_STRINGS[:40]): _random_value(rng, depth + 1) for _ in range(size)}
    return [_random_value(rng, depth + 1) for _ in range(size)]


def test_random_documents() -> None:
    rng = random.Random(6)
    for _ in range(3000):
        document = {"root": _random_value(rng, 0), "list": [_random_value(rng, 1) for _ in range(2)]}
        assert yamlio.dump(document) == libyaml(document), document


def test_random_strings() -> None:
    """Short strings over an alphabet of indicators, digits, spaces and breaks, as keys and values."""
    rng = random.Random(6)
    alphabet = "a1 -:#?,[]{}'\"!&*|>%@`.~=<_/\té0"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 7)))
        document = {"k": text, text or "e": [text], "n": {"k": text}}
        assert yamlio.dump(document) == libyaml(document), document


def _render_shipped() -> dict[str, bytes]:
    catalog = load_catalog(PROJECT / "components")
    platform = load_platform(PROJECT / "platform.yaml", catalog, "platform.yaml")
    return render(make_plan(platform, catalog)).files


def test_rendered_tree_is_the_same_through_pyyaml_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _render_shipped()

    def not_simple(data: Any) -> str:
        raise yamlio._NotSimple

    monkeypatch.setattr(yamlio, "_write_document", not_simple)
    assert _render_shipped() == fast


def test_common_documents_take_the_fast_path() -> None:
    """The comparisons above would pass vacuously if everything went to PyYAML."""
    document = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "labels": {}},
                "spec": {"replicas": 2, "paused": False, "template": {"spec": {"containers": [
                    {"name": "c", "image": "docker.io/library/nginx:1.27", "args": ["--port", "8080", "a b"]}]}}}}
    assert yamlio._write_document(document) == libyaml(document)


def test_a_failed_write_leaves_no_trace(tmp_path: Path) -> None:
    """Files are written beside their destinations before any is moved: a failure midway undoes them all."""
    (tmp_path / "blocked").write_text("a file where the tree wants a folder\n")
    tree = RenderedTree({"a/one.yaml": b"# Generated by kfgen\n", "a/b/two.yaml": b"# Generated by kfgen\n",
                         "blocked/three.yaml": b"# Generated by kfgen\n"})
    with pytest.raises(OSError):
        write_tree(tree, tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blocked"]
    tree = RenderedTree({"a/one.yaml": b"# Generated by kfgen\n", "a/b/two.yaml": b"# Generated by kfgen\n"})
    assert sorted(write_tree(tree, tmp_path).written) == ["a/b/two.yaml", "a/one.yaml"]
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "a/b/two.yaml", "a/one.yaml", "blocked", "generated-files.json"]
    # Files in existing folders go through temporaries, files in new folders are written in place: a
    # failure after both kinds leaves neither, and the new folders go with their files.
    changed = RenderedTree({"a/one.yaml": b"# Generated by kfgen, changed\n", "a/b/two.yaml": b"# Generated by kfgen\n",
                            "a/c/d/new.yaml": b"# Generated by kfgen\n", "blocked/three.yaml": b"# Generated by kfgen\n"})
    with pytest.raises(OSError):
        write_tree(changed, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "a", "a/b", "a/b/two.yaml", "a/one.yaml", "blocked", "generated-files.json"]
    assert (tmp_path / "a" / "one.yaml").read_bytes() == b"# Generated by kfgen\n"


def test_the_remembered_catalog_and_spec_are_the_shipped_ones(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache")
    load_inputs(PROJECT / "components", PROJECT / "platform.yaml", "platform.yaml", cache).remember()
    remembered = load_inputs(PROJECT / "components", PROJECT / "platform.yaml", "platform.yaml", cache)
    assert cache.hits == 2 and not remembered.unsaved
    catalog = load_catalog(PROJECT / "components")
    assert remembered.catalog == catalog
    assert remembered.platform == load_platform(PROJECT / "platform.yaml", catalog, "platform.yaml")
    assert render(make_plan(remembered.platform, remembered.catalog)).files == _render_shipped()


def _modules_of_a_second_run(tmp_path: Path, *argv: str) -> set[str]:
    """The modules a command imports when an identical run before it filled the build cache."""
    program = ("import sys\nfrom kfgen.cli import main\ncode = main(sys.argv[1:])\n"
               "print(' '.join(sorted(sys.modules)))\nsys.exit(code)\n")
    env = dict(os.environ, KFGEN_CACHE_DIR=str(tmp_path / "cache"))
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", program, *argv], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    return set(result.stdout.splitlines()[-1].split())


def test_validate_on_unchanged_inputs_does_not_import_jsonschema(tmp_path: Path) -> None:
    assert "jsonschema" not in _modules_of_a_second_run(tmp_path, "validate", "--project", str(PROJECT))


def test_a_drift_check_on_unchanged_inputs_imports_neither_validation_nor_building(tmp_path: Path) -> None:
    modules = _modules_of_a_second_run(tmp_path, "check", "--drift-only", "--project", str(PROJECT))
    assert not modules & {"jsonschema", "kfgen.build", "kfgen.objects", "kfgen.apply", "kfgen.policies", "urllib.request"}


def test_the_top_level_help_imports_no_verb() -> None:
    program = ("import sys\nfrom kfgen.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
               "print(' '.join(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True)
    modules = set(result.stdout.splitlines()[-1].split())
    assert "check" in result.stdout and not {m for m in modules if m.startswith("kfgen.") and m not in ("kfgen.cli", "kfgen.errors")}
