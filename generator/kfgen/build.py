"""Building: the real kustomize on each rendered component overlay, in parallel, read back as objects.

Building only reads the rendered tree (and vendor/); it never writes into the project.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BuildError, InputError, ToolMissing
from .plan import EnvironmentPlan
from .yamlio import load_all_plain

KUSTOMIZE_VERSION = "v5.8.1"


@dataclass(frozen=True)
class ComponentBuild:
    name: str
    wave: int
    text: str
    objects: list[dict[str, Any]]
    seconds: float


@dataclass(frozen=True)
class EnvironmentBuild:
    environment: str
    components: tuple[ComponentBuild, ...]  # in dependency order
    seconds: float

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [obj for c in self.components for obj in c.objects]


def find_kustomize(project_root: Path) -> str:
    """The pinned kustomize: $KFGEN_KUSTOMIZE, then .tools/bin in the project, then PATH."""
    candidates = [os.environ.get("KFGEN_KUSTOMIZE"), str(project_root / ".tools" / "bin" / "kustomize"), shutil.which("kustomize")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ToolMissing(f"kustomize {KUSTOMIZE_VERSION} not found: run `make tools` (or set KFGEN_KUSTOMIZE)")


def kustomize_build(kustomize: str, directory: Path) -> str:
    result = subprocess.run([kustomize, "build", str(directory)], capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("# Warning")]
        raise BuildError(f"kustomize build {directory} failed:\n" + "\n".join(errors[-20:]))
    return result.stdout


def build_environment(
    project_root: Path,
    env_plan: EnvironmentPlan,
    jobs: int | None = None,
    progress: Callable[[str, int, int, float], None] | None = None,
) -> EnvironmentBuild:
    """Build every component overlay of one environment; results in dependency order."""
    overlays = project_root / "overlays" / env_plan.name
    if not (overlays / "kustomization.yaml").is_file():
        raise InputError(f"overlays/{env_plan.name} is not rendered: run `kfgen render` first")
    kustomize = find_kustomize(project_root)
    started = time.perf_counter()
    done = 0

    def one(planned) -> ComponentBuild:
        nonlocal done
        begin = time.perf_counter()
        text = kustomize_build(kustomize, overlays / planned.name)
        objects = load_all_plain(text)
        build = ComponentBuild(planned.name, planned.wave, text, objects, time.perf_counter() - begin)
        done += 1
        if progress:
            progress(planned.name, done, len(env_plan.components), time.perf_counter() - started)
        return build

    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        results = list(pool.map(one, env_plan.components))
    return EnvironmentBuild(env_plan.name, tuple(results), time.perf_counter() - started)


def write_build(build: EnvironmentBuild, out: Path) -> list[Path]:
    """One file of objects per component, numbered in dependency order, plus summary.txt."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    width = len(str(len(build.components)))
    for index, component in enumerate(build.components, start=1):
        path = out / f"{index:0{width}d}-{component.name}.yaml"
        path.write_text(component.text, encoding="utf-8")
        written.append(path)
    summary = out / "summary.txt"
    summary.write_text(format_summary(build), encoding="utf-8")
    written.append(summary)
    return written


def format_summary(build: EnvironmentBuild) -> str:
    lines = [f"environment {build.environment}: {len(build.objects)} objects from {len(build.components)} components "
             f"in {build.seconds:.1f}s", f"{'wave':>4}  {'component':<28} {'objects':>7}"]
    for component in build.components:
        lines.append(f"{component.wave:>4}  {component.name:<28} {len(component.objects):>7}")
    return "\n".join(lines) + "\n"
