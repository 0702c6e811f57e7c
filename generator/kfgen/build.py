"""Building: the real kustomize on each rendered component overlay, in parallel, read back as objects.

Building only reads the rendered tree (and vendor/); it never writes into the project. In remote
source mode it builds a temporary copy whose remote bases are resolved from the source caches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import BuildError, InputError, ToolMissing
from .plan import EnvironmentPlan
from .refs import RemoteDir, parse_remote
from .sources import SourceCache, vendor, verify_vendor
from .yamlio import dump, load_all_plain

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


@contextmanager
def build_tree(project_root: Path, source_mode: str, cache: SourceCache) -> Iterator[Path]:
    """The tree to build from: the project itself when vendored (after checking vendor/ against
    the lock), or a temporary copy whose remote bases point at sources from the caches."""
    if source_mode == "vendored":
        verify_vendor(project_root)
        yield project_root
        return
    with tempfile.TemporaryDirectory(prefix="kfgen-build-") as workdir:
        tree = Path(workdir)
        shutil.copytree(project_root / "overlays", tree / "overlays")
        shutil.copytree(project_root / "base", tree / "base")
        bases = sorted((tree / "base").glob("*/kustomization.yaml"))
        roots: dict[str, RemoteDir] = {}
        documents = {}
        for path in bases:
            documents[path] = yaml.safe_load(path.read_text(encoding="utf-8"))
            for field in ("resources", "components"):
                for entry in documents[path].get(field) or []:
                    remote = parse_remote(entry)
                    if isinstance(remote, RemoteDir):
                        roots[entry] = remote
        vendor(sorted(set(roots.values())), cache, tree / "vendor")
        for path, document in documents.items():
            for field in ("resources", "components"):
                document[field] = [os.path.relpath(tree / "vendor" / roots[e].relpath, path.parent) if e in roots else e
                                   for e in document.get(field) or []] or None
            path.write_text(dump({k: v for k, v in document.items() if v is not None}), encoding="utf-8")
        yield tree


def build_environment(
    project_root: Path,
    env_plan: EnvironmentPlan,
    jobs: int | None = None,
    progress: Callable[[str, int, int, float], None] | None = None,
    tree: Path | None = None,
) -> EnvironmentBuild:
    """Build every component overlay of one environment; results in dependency order.

    The overlays are read from tree (see build_tree), the project itself by default."""
    overlays = (tree or project_root) / "overlays" / env_plan.name
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


def write_hydrated(build: EnvironmentBuild, rendered_root: Path, source: str) -> Path:
    """rendered/<env>/<component>/manifests.yaml for the rendered-manifests pattern, replaced whole."""
    target = rendered_root / build.environment
    rendered_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{build.environment}-", dir=rendered_root))
    try:
        for component in build.components:
            folder = staging / component.name
            folder.mkdir()
            head = f"# Generated by kfgen hydrate from {source} (component {component.name}). Do not edit.\n"
            (folder / "manifests.yaml").write_text(head + component.text, encoding="utf-8")
        old = target.with_name(f".{build.environment}.old")
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
