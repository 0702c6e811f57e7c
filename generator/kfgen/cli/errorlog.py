"""The report of an internal error: one line on the terminal, the traceback in the project's log.

An exception no error type covers is a bug in kfgen. Its traceback, with kfgen's version and the command
line, is appended to .kfgen/kfgen.log in the project (untracked, like the rest of .kfgen/), where a bug
report can quote it; the terminal keeps the one-line message, which says where the log is.
"""

from __future__ import annotations

import os
import platform
import shlex
import traceback
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..errors import one_line

LOG = Path(".kfgen") / "kfgen.log"


def _summary(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # an exception whose message itself fails is still reported
        text = "(its message cannot be shown)"
    return one_line(f"kfgen: internal error: {type(error).__name__}: {text}")


def _entry(error: BaseException, arguments: list[str]) -> str:
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = f"--- {started} kfgen {__version__} on Python {platform.python_version()}\n"
    command = f"$ {shlex.join(['kfgen', *arguments])}\n"
    return header + command + "".join(traceback.format_exception(error))


def report_internal_error(error: BaseException, project: str | None, arguments: list[str]) -> str:
    """What to show on stderr for error, after appending its traceback to the project's log.

    Reporting never fails: when there is no project folder to write in, or the log cannot be written,
    the traceback is shown instead, after the one-line message."""
    summary = _summary(error)
    entry = _entry(error, arguments)
    if project is None:
        return f"{summary}\n{entry}"
    log = Path(os.path.abspath(project)) / LOG  # abspath: resolving could fail on the folder that is the problem
    try:
        log.parent.mkdir(exist_ok=True)  # in the project only: a missing project folder is not created
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(entry)
    except OSError as problem:
        return f"{summary}\nkfgen: the traceback follows, since {log} cannot be written ({problem.strerror or problem}):\n{entry}"
    return f"{summary} (traceback in {log})\n"
