"""What every command needs: the project, the catalog, the spec and the plan."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

# The catalog, spec and plan (and their JSON Schema validation) are imported when a project is loaded,
# and building where it is used: a repeated check answered from its record needs none of them.
if TYPE_CHECKING:
    from ..build import EnvironmentBuild
    from ..buildcache import BuildCache
    from ..catalog import Catalog
    from ..inputcache import Inputs
    from ..plan import EnvironmentPlan, Plan
    from ..render import RenderedTree
    from ..sources import SourceCache
    from ..spec import Platform


def add_project_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help="the platform spec (default: platform.yaml in the project)")
    parser.add_argument("--project", default=".", help="project root (default: the current directory)")


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source-cache", action="append", default=[], metavar="DIR",
                        help="a source cache laid out as kustomize localize names remote roots (repeatable; "
                             "default: $KFGEN_SOURCE_CACHE, then ../shared/upstream beside the project)")


@dataclass
class Project:
    root: Path
    catalog: Catalog
    platform: Platform
    plan: Plan
    inputs: Inputs | None = None  # how catalog and platform were loaded, and their cache


def load_project(args: argparse.Namespace) -> Project:
    from ..inputcache import load_inputs
    from ..plan import make_plan

    root = Path(args.project).resolve()
    if not (root / "components").is_dir():
        raise InputError(f"{root} has no components/ catalog; run from the project root or pass --project")
    spec = Path(args.spec).resolve() if args.spec else root / "platform.yaml"
    # Named relative to the project, so that generated headers do not depend on where kfgen ran.
    display = spec.relative_to(root).as_posix() if spec.is_relative_to(root) else str(spec)
    inputs = load_inputs(root / "components", spec, display, build_cache(args, root))
    plan = make_plan(inputs.platform, inputs.catalog)
    inputs.remember()  # only now that the plan is made too: bad input writes nothing, not even to the cache
    return Project(root, inputs.catalog, inputs.platform, plan, inputs)


def rendered(project: Project, args: argparse.Namespace) -> RenderedTree:
    """The project's rendered tree, from the build cache when the inputs are unchanged (see rendercache.py)."""
    from ..mirror import read_inputs
    from ..rendercache import render_cached

    caches = source_cache(args, project.root).directories
    return render_cached(project.plan, project.inputs, read_inputs(project.plan, project.root, caches))


def source_cache(args: argparse.Namespace, root: Path) -> SourceCache:
    from ..sources import SourceCache

    directories = [Path(d) for d in getattr(args, "source_cache", [])]
    if not directories and os.environ.get("KFGEN_SOURCE_CACHE"):
        directories = [Path(d) for d in os.environ["KFGEN_SOURCE_CACHE"].split(os.pathsep) if d]
    if not directories:
        directories = [root.parent / "shared" / "upstream"]
    fetched = root / ".kfgen" / "sources"
    return SourceCache(directories + [fetched], fetch_dir=fetched)


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=None, help="parallel kustomize builds (default: the machine's cores)")
    parser.add_argument("--no-cache", action="store_true",
                        help="build everything again, ignoring the build cache (.kfgen/cache, or $KFGEN_CACHE_DIR)")


def build_cache(args: argparse.Namespace, root: Path) -> BuildCache | None:
    """The build cache: .kfgen/cache, or $KFGEN_CACHE_DIR to share one between checkouts (a CI cache).
    Its keys hold no paths, only contents, so checkouts of the same inputs share entries safely.
    None for a command run with --no-cache; a command without that option uses the cache."""
    from ..buildcache import BuildCache

    if getattr(args, "no_cache", False):
        return None
    return BuildCache(Path(os.environ["KFGEN_CACHE_DIR"]) if os.environ.get("KFGEN_CACHE_DIR") else root / ".kfgen" / "cache")


def built_environments(project: Project, args: argparse.Namespace, env_plans: list[EnvironmentPlan],
                       label: str = "build") -> Iterator[tuple[EnvironmentPlan, EnvironmentBuild]]:
    """Build each environment in turn, sharing one build tree, one Builder (bases built once) and the cache."""
    from ..build import Builder, build_environment, build_tree

    with (build_tree(project.root, project.platform.source_mode, source_cache(args, project.root), project.platform.mirrors) as tree,
          Builder(project.root, tree, build_cache(args, project.root)) as builder):
        for env_plan in env_plans:
            yield env_plan, build_environment(project.root, env_plan, args.jobs, progress_printer(f"{label} {env_plan.name}"),
                                              tree, builder=builder)


def progress_printer(label: str) -> Callable[[str, int, int, float], None] | None:
    """A progress callback for terminals; None (quiet) when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(name: str, done: int, total: int, seconds: float) -> None:
        end = "\n" if done == total else ""
        sys.stderr.write(f"\r\033[K{label} [{done}/{total}] {name} ({seconds:.1f}s){end}")
        sys.stderr.flush()

    return show
