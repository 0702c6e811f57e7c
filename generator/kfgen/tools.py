"""Finding the pinned external tools that `make tools` installs into .tools/bin."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import ToolMissing


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
