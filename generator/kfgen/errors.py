"""Error types. Every stage raises one of these; the CLI catches them in one place."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# Characters that would break the one-line-per-error format or act on a terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """Text with line breaks and control characters escaped, as in JSON."""
    return _UNPRINTABLE.sub(lambda match: json.dumps(match.group())[1:-1], text)


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about an input file, located as precisely as we can."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def format(self) -> str:
        if not self.file:
            return f"kfgen: error: {self.message}"
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        field = f"{self.path}: " if self.path else ""
        return one_line(f"{where}: error: {field}{self.message}")


class KfgenError(Exception):
    """Base class of errors the CLI reports without a traceback."""

    exit_code = 2


class InputError(KfgenError):
    """Bad input: the spec, the catalog or the command line. Exit code 2."""

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", 0, 0, "", problems)]
        self.problems = sorted(set(problems))
        super().__init__("\n".join(p.format() for p in self.problems))


class SpecError(InputError):
    """The platform spec is invalid."""


class CatalogError(InputError):
    """A catalog entry (components/<name>/component.yaml) is invalid."""


class SourceError(KfgenError):
    """An upstream source could not be found, read or vendored."""


class BuildError(KfgenError):
    """kustomize failed on a rendered overlay."""

    exit_code = 1


class PolicyError(KfgenError):
    """conftest could not run the project's policies: a Rego error in policies/, say."""


class ToolMissing(KfgenError):
    """A required external tool is not installed."""
