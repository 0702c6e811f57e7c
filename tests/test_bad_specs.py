"""Bad input is refused precisely: every case of the corpus gives its errors, exit 2, and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT, TempProject, tree_snapshot

CORPUS = PROJECT / "tests" / "bad_specs"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())
CASES = sorted(p.name for p in CORPUS.glob("[0-9]*.yaml"))


def test_corpus_is_complete():
    assert len(CASES) >= 40
    assert sorted(EXPECTED) == CASES


@pytest.fixture
def project(tmp_path) -> TempProject:
    return TempProject(tmp_path / "project")


def test_the_corpus_base_is_valid(project):
    project.spec_path.write_bytes((CORPUS / "_valid.yaml").read_bytes())
    result = project.kfgen("validate")
    assert result.returncode == 0, result.stderr


def _refused(project: TempProject, verb: str = "render") -> list[str]:
    before = tree_snapshot(project.root)
    result = project.kfgen(verb)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert tree_snapshot(project.root) == before, "a refused spec must write nothing"
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_is_refused_with_its_errors(project, case):
    project.spec_path.write_bytes((CORPUS / case).read_bytes())
    lines = _refused(project)
    expected = EXPECTED[case]
    assert len(lines) == len(expected), lines
    for line, prefix in zip(lines, expected, strict=True):
        assert line.startswith("platform.yaml:"), line
        assert line.removeprefix("platform.yaml:").startswith(prefix), (line, prefix)


def test_huge_file_is_refused(project):
    project.spec_path.write_text("name: x\n" + "# padding\n" * 500_000)
    assert _refused(project) == ["platform.yaml:1:1: error: file is larger than 4194304 bytes"]


def test_non_utf8_is_refused(project):
    project.spec_path.write_bytes((CORPUS / "_valid.yaml").read_bytes().replace(b"ada@example.com", b"ada\xff@example.com"))
    assert _refused(project, "validate") == ["platform.yaml:16:1: error: file is not valid UTF-8"]


def test_dependency_cycle_in_the_catalog_is_named(project):
    project.spec_path.write_bytes((CORPUS / "_valid.yaml").read_bytes())
    entry = project.root / "components" / "istio-crds" / "component.yaml"
    entry.write_text(entry.read_text().replace("dependsOn: []", "dependsOn: [istio]"))
    lines = _refused(project, "validate")
    assert any("dependency cycle: istio -> istio-crds -> istio" in line for line in lines), lines


def test_json_output_lists_every_error(project):
    project.spec_path.write_bytes((CORPUS / "55-several-problems-at-once.yaml").read_bytes())
    result = project.kfgen("--output", "json", "validate")
    assert result.returncode == 2
    errors = json.loads(result.stdout)["errors"]
    assert [(e["line"], e["column"], e["path"]) for e in errors] == [(9, 3, "sources.mode"), (21, 5, "environments[0].cluster.provider")]
    assert all(set(e) == {"file", "line", "column", "path", "message"} for e in errors)


def test_github_output_annotates_the_spec(project):
    project.spec_path.write_bytes((CORPUS / "22-bad-provider.yaml").read_bytes())
    result = project.kfgen("--output", "github", "validate")
    assert result.returncode == 2
    assert result.stdout.startswith("::error file=platform.yaml,line=21,col=5::environments[0].cluster.provider: expected one of")


def test_usage_errors_exit_2():
    from conftest import run_kfgen
    result = run_kfgen("render", "--no-such-flag", cwd=Path(PROJECT))
    assert result.returncode == 2 and "kfgen: error:" in result.stderr
