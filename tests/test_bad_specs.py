"""Bad input is refused precisely: every case of the corpus gives its errors, exit 2, and writes nothing.

Each tests/bad_specs/NN-name.yaml starts with one `# expect: LINE:COL: error: PATH: message` line per
error the real CLI must print, in order. An expectation may leave out stretches of a long message
with ` ... `; the parts left must appear in that order.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TempProject, run_kfgen, tree_snapshot

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT / "tests" / "bad_specs"
CASES = sorted(p.name for p in CORPUS.glob("[0-9]*.yaml"))
EXPECT = "# expect: "
SPEC = "platform.yaml"


def expectations(case: str) -> list[str]:
    found = []
    for line in (CORPUS / case).read_text(encoding="utf-8").splitlines():
        if not line.startswith(EXPECT):
            break
        found.append(line.removeprefix(EXPECT))
    return found


def matches(line: str, expected: str) -> bool:
    """The error line is `platform.yaml:` + expected, where ` ... ` in expected stands for any text."""
    first, *rest = expected.split(" ... ")
    if not line.startswith(f"{SPEC}:{first}"):
        return False
    position = len(SPEC) + 1 + len(first)
    for part in rest:
        position = line.find(part, position)
        if position < 0:
            return False
        position += len(part)
    return True


@pytest.fixture
def project(tmp_path: Path) -> TempProject:
    return TempProject(tmp_path / "project")


def refused(project: TempProject, *args: str) -> list[str]:
    """Run the CLI on the project; it must refuse with exit 2, no traceback, and write nothing."""
    before = tree_snapshot(project.root)
    result = run_kfgen(*args, "--project", str(project.root), cwd=project.root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert tree_snapshot(project.root) == before, "a refused spec must write nothing"
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_corpus_is_complete():
    assert len(CASES) >= 45
    numbers = [case.split("-", 1)[0] for case in CASES]
    assert len(set(numbers)) == len(numbers), "two cases share a number"
    for case in CASES:
        assert re.fullmatch(r"[0-9]{2,3}-[a-z0-9-]+\.yaml", case), case
        assert expectations(case), f"{case} has no '# expect:' line"


def test_the_corpus_base_is_valid(project):
    """The cases are this spec with one defect each; if it failed, every case would pass for nothing."""
    project.spec_path.write_bytes((CORPUS / "_valid.yaml").read_bytes())
    result = run_kfgen("validate", SPEC, "--project", str(project.root), cwd=project.root)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_is_refused_with_its_errors(project, case):
    project.spec_path.write_bytes((CORPUS / case).read_bytes())
    lines = refused(project, "validate", SPEC)
    expected = expectations(case)
    assert len(lines) == len(expected), "\n".join(lines)
    for line, want in zip(lines, expected, strict=True):
        assert matches(line, want), f"\n  got:      {line}\n  expected: {SPEC}:{want}"
    # Render, the verb that writes, refuses the same spec with the same errors before writing anything.
    assert refused(project, "render") == lines


def test_errors_come_sorted_by_position():
    for case in CASES:
        positions = [tuple(int(n) for n in want.split(":", 2)[:2]) for want in expectations(case)]
        assert positions == sorted(positions), case


def test_empty_file_is_refused(project):
    project.spec_path.write_bytes(b"")
    assert refused(project, "validate", SPEC) == [f"{SPEC}:1:1: error: expected a mapping, found nothing (the document is empty)"]


def test_huge_file_is_refused(project):
    # Valid YAML, so that only its size can be the reason.
    valid = (CORPUS / "_valid.yaml").read_bytes()
    padding = b"# padding to make the file large\n" * (4 * 1024 * 1024 // 32)
    project.spec_path.write_bytes(valid + padding)
    assert project.spec_path.stat().st_size > 4 * 1024 * 1024
    assert refused(project, "validate", SPEC) == [f"{SPEC}:1:1: error: file is larger than 4 MiB (4194304 bytes)"]


def test_megabytes_of_nesting_are_refused_without_a_crash(project):
    # Deep enough to overflow a recursive composer's stack; the nesting bound must stop it first.
    project.spec_path.write_bytes(b"a: " + b"[" * 3_000_000 + b"\n")
    lines = refused(project, "validate", SPEC)
    assert len(lines) == 1 and lines[0].startswith(f"{SPEC}:1:68: error: a[0][0]"), lines
    assert lines[0].endswith("]: document nests deeper than 64 levels"), lines


def test_non_utf8_is_refused(project):
    text = (CORPUS / "_valid.yaml").read_bytes().replace(b"owner: ada@example.com", b"owner: ada\xff@example.com")
    project.spec_path.write_bytes(text)
    line = text.split(b"\n").index(b"  owner: ada\xff@example.com") + 1
    column = len(b"  owner: ada") + 1
    assert refused(project, "validate", SPEC) == [f"{SPEC}:{line}:{column}: error: file is not valid UTF-8 (byte 0xff)"]


def test_latin1_file_is_refused(project):
    before = "name: test-platform # plateforme r"
    text = (CORPUS / "_valid.yaml").read_text(encoding="utf-8").replace("name: test-platform", "name: test-platform # plateforme réseau")
    project.spec_path.write_bytes(text.encode("latin-1"))
    assert refused(project, "validate", SPEC) == [f"{SPEC}:3:{len(before) + 1}: error: file is not valid UTF-8 (byte 0xe9)"]


def test_missing_spec_is_refused(project):
    lines = refused(project, "validate", "no-such-spec.yaml")
    assert len(lines) == 1 and lines[0].startswith("no-such-spec.yaml: error: cannot read file"), lines


def _add_dependency(entry: Path, dependency: str) -> None:
    text = entry.read_text(encoding="utf-8")
    edited = re.sub(r"^dependsOn: \[(.*)\]$", lambda m: f"dependsOn: [{m.group(1)}, {dependency}]" if m.group(1) else f"dependsOn: [{dependency}]",
                    text, count=1, flags=re.MULTILINE)
    assert edited != text, f"no dependsOn line in {entry}"
    entry.write_text(edited, encoding="utf-8")


def test_dependency_cycle_in_the_catalog_is_named(project):
    """Only the catalog can make a cycle; validate reaches the check (it plans) and names the cycle."""
    project.spec_path.write_bytes((CORPUS / "_valid.yaml").read_bytes())
    _add_dependency(project.root / "components" / "katib" / "component.yaml", "pipelines")
    _add_dependency(project.root / "components" / "pipelines" / "component.yaml", "katib")
    lines = refused(project, "validate", SPEC)
    assert any("dependency cycle: katib -> pipelines -> katib" in line for line in lines), lines


def test_json_output_lists_every_error(project):
    case = "75-problems-in-every-stage.yaml"
    project.spec_path.write_bytes((CORPUS / case).read_bytes())
    result = run_kfgen("--output", "json", "validate", SPEC, "--project", str(project.root), cwd=project.root)
    assert result.returncode == 2, result.stderr
    errors = json.loads(result.stdout)["errors"]
    assert isinstance(errors, list) and len(errors) == len(expectations(case))
    for error in errors:
        assert set(error) == {"file", "line", "column", "path", "message"}
        assert error["file"] == SPEC and isinstance(error["line"], int) and isinstance(error["column"], int)
    assert [(e["line"], e["column"], e["path"]) for e in errors] == [
        (11, 1, "gitops"), (16, 3, "components.katlib"), (30, 3, "environments[0].tls")]
    # The same errors, in the same order, as the text on stderr.
    text = [line for line in result.stderr.splitlines() if line]
    assert text == [f"{e['file']}:{e['line']}:{e['column']}: error: {e['path']}: {e['message']}" for e in errors]


def test_github_output_annotates_the_spec(project):
    project.spec_path.write_bytes((CORPUS / "22-bad-provider.yaml").read_bytes())
    result = run_kfgen("--output", "github", "validate", SPEC, "--project", str(project.root), cwd=project.root)
    assert result.returncode == 2
    assert result.stdout.startswith(f"::error file={SPEC},line=22,col=5::environments[0].cluster.provider: expected one of")


def test_github_output_cannot_be_broken_by_the_spec(project):
    project.spec_path.write_bytes((CORPUS / "68-newline-in-key.yaml").read_bytes())
    result = run_kfgen("--output", "github", "validate", SPEC, "--project", str(project.root), cwd=project.root)
    assert result.returncode == 2
    assert len(result.stdout.splitlines()) == 1 and "\\n" in result.stdout


def test_usage_errors_exit_2():
    result = run_kfgen("render", "--no-such-flag", cwd=PROJECT)
    assert result.returncode == 2 and "kfgen: error:" in result.stderr and "Traceback" not in result.stderr


def test_internal_error_exits_70_with_one_line_and_the_log(project):
    project.spec_path.write_bytes((CORPUS / "_valid.yaml").read_bytes())
    # A bug anywhere below the CLI: the plan step fails in a way no error type covers.
    program = ("import sys, kfgen.plan as plan\n"
               "def broken(*args, **kwargs): raise RuntimeError('boom')\n"
               "plan.make_plan = broken\n"
               "from kfgen.cli import entry\n"
               "sys.argv = ['kfgen', 'validate', '--project', sys.argv[1]]\n"
               "entry()\n")
    result = subprocess.run([sys.executable, "-c", program, str(project.root)], cwd=project.root, capture_output=True, text=True, timeout=120,
                            env={name: value for name, value in os.environ.items() if name != "KFGEN_DEBUG"})
    assert result.returncode == 70, result.stderr
    log = project.root / ".kfgen" / "kfgen.log"  # tests/test_internal_errors.py tells what it holds
    assert result.stderr == f"kfgen: internal error: RuntimeError: boom (traceback in {log})\n"
    assert "in broken" in log.read_text(encoding="utf-8")
