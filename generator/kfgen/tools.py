"""Finding the pinned external tools that `make tools` installs into .tools/bin."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Literal, overload

from .errors import ToolMissing


@overload
def find_tool(name: str, project_root: Path, version: str = "", required: Literal[True] = True) -> str: ...
@overload
def find_tool(name: str, project_root: Path, version: str = "", required: bool = True) -> str | None: ...
def find_tool(name: str, project_root: Path, version: str = "", required: bool = True) -> str | None:
    """$KFGEN_<NAME>, then .tools/bin in the project, then PATH."""
    variable = "KFGEN_" + name.upper().replace("-", "_")
    candidates = [os.environ.get(variable), str(project_root / ".tools" / "bin" / name), shutil.which(name)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not required:
        return None
    raise ToolMissing(f"{name} {version} not found: run `make tools` (or set {variable})".replace("  ", " "))


def tool_identity(path: str) -> str:
    """Names one build of a tool, for cache keys: a rebuilt binary invalidates what it built or decided."""
    stat = os.stat(path)
    return f"{os.path.realpath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


# The Go tools kfgen runs over many inputs (the kustomize worker, conftest) make garbage that dies young
# over a small live heap (55 MiB at most building every base), so their collectors are set to run at a
# fixed heap size instead of in proportion to what is live. A cold check of three environments took
# about 15.7 s of CPU instead of 18.7 s with the worker at GOGC=400, and conftest 0.28 s instead of
# 0.45 s per environment, for about 100 and 20 MiB more at their peaks.
_COLLECT_LATE = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}


def go_tool_environment() -> dict[str, str]:
    """The environment to run such a Go tool in: the user's GOGC or GOMEMLIMIT, when set, win."""
    if os.environ.get("GOGC") or os.environ.get("GOMEMLIMIT"):
        return dict(os.environ)
    return {**os.environ, **_COLLECT_LATE}
