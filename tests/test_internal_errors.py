"""An internal error, an exception no error type covers: exit 70 and one line on stderr, the traceback in
the project's .kfgen/kfgen.log; with KFGEN_DEBUG=1 the exception itself. (tests/test_bad_specs.py has one
run through the real entry point.)"""

from __future__ import annotations

from pathlib import Path

import pytest

import kfgen.cli.validate as validate_verb
from kfgen import __version__
from kfgen.cli import EXIT_INTERNAL, main


@pytest.fixture
def broken_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """`kfgen validate` fails with a bug of its own."""
    def broken(_args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(validate_verb, "run", broken)
    monkeypatch.delenv("KFGEN_DEBUG", raising=False)


def test_the_traceback_is_appended_to_the_projects_log(broken_validate, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    log = tmp_path / ".kfgen" / "kfgen.log"
    for _ in range(2):
        assert main(["validate", "--project", str(tmp_path)]) == EXIT_INTERNAL
        assert capsys.readouterr().err == f"kfgen: internal error: RuntimeError: boom (traceback in {log})\n"
    entries = log.read_text(encoding="utf-8").split("--- ")[1:]
    assert len(entries) == 2
    for entry in entries:
        assert f"kfgen {__version__} on Python" in entry.splitlines()[0]
        assert entry.splitlines()[1] == f"$ kfgen validate --project {tmp_path}"
        assert "Traceback (most recent call last):" in entry and entry.endswith("RuntimeError: boom\n")


@pytest.mark.parametrize("debug", ["1", "yes"])
def test_kfgen_debug_raises_the_exception_instead(broken_validate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug: str):
    monkeypatch.setenv("KFGEN_DEBUG", debug)
    with pytest.raises(RuntimeError, match="boom"):
        main(["validate", "--project", str(tmp_path)])
    assert not (tmp_path / ".kfgen").exists()


@pytest.mark.parametrize("where", ["a file where .kfgen/ belongs", "no project folder"])
def test_a_log_that_cannot_be_written_leaves_the_traceback_on_stderr(broken_validate, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                     where: str):
    project = tmp_path / "project"
    if where == "a file where .kfgen/ belongs":
        project.mkdir()
        (project / ".kfgen").write_text("not a folder\n", encoding="utf-8")
    assert main(["validate", "--project", str(project)]) == EXIT_INTERNAL
    first, second, *rest = capsys.readouterr().err.splitlines()
    assert first == "kfgen: internal error: RuntimeError: boom"
    assert second.startswith(f"kfgen: the traceback follows, since {project / '.kfgen' / 'kfgen.log'} cannot be written (")
    assert "Traceback (most recent call last):" in rest and rest[-1] == "RuntimeError: boom"
    assert not project.exists() or (project / ".kfgen").read_text(encoding="utf-8") == "not a folder\n"


def test_the_message_stays_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    def broken(_args: object) -> int:
        raise ValueError("first line\nsecond line")

    monkeypatch.setattr(validate_verb, "run", broken)
    monkeypatch.delenv("KFGEN_DEBUG", raising=False)
    assert main(["validate", "--project", str(tmp_path)]) == EXIT_INTERNAL
    assert capsys.readouterr().err.startswith("kfgen: internal error: ValueError: first line\\nsecond line (traceback in ")

