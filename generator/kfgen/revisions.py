"""Whole-platform snapshots of a revision: render, vendor and build every environment in a scratch tree.

Used to compare revisions (`kfgen diff`) and releases (`kfgen upgrade`). The project's own working
tree is only read: a git revision is checked out in a temporary worktree, and the working tree's
spec and catalog are copied to a temporary folder.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .build import Builder, build_environment, build_tree
from .buildcache import BuildCache
from .catalog import load_catalog
from .diff import DiffReport, Snapshot, compare
from .errors import InputError
from .mirror import read_inputs
from .output import write_tree
from .plan import make_plan
from .render import render
from .sources import LOCK_FILE, SourceCache, vendor, write_lock
from .spec import load_platform

INPUTS = ("platform.yaml", "components")
Progress = Callable[[str, int, int, float], None]


@contextmanager
def working_copy(project_root: Path) -> Iterator[Path]:
    """The working tree's spec and catalog, copied to a scratch folder."""
    with tempfile.TemporaryDirectory(prefix="kfgen-head-") as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        shutil.copy2(project_root / "platform.yaml", tree / "platform.yaml")
        shutil.copytree(project_root / "components", tree / "components")
        yield tree


@contextmanager
def git_revision(project_root: Path, ref: str) -> Iterator[Path]:
    """A git revision of the project checked out in a temporary worktree, removed afterwards."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(project_root), *args], capture_output=True, text=True)

    found = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise InputError(f"no git revision {ref!r} in {project_root}")
    toplevel = Path(git("rev-parse", "--show-toplevel").stdout.strip())
    prefix = project_root.resolve().relative_to(toplevel.resolve())
    with tempfile.TemporaryDirectory(prefix="kfgen-rev-") as scratch:
        tree = Path(scratch) / "tree"
        added = git("worktree", "add", "--detach", str(tree), found.stdout.strip())
        if added.returncode != 0:
            raise InputError(f"cannot check out {ref!r}: {added.stderr.strip()}")
        try:
            yield tree / prefix
        finally:
            git("worktree", "remove", "--force", str(tree))


def snapshot(tree: Path, project_root: Path, label: str, cache: SourceCache, jobs: int | None = None,
             progress: Progress | None = None, build_cache: BuildCache | None = None) -> Snapshot:
    """Render, vendor and build every environment of the project at tree (a scratch copy)."""
    if not (tree / "platform.yaml").is_file():
        raise InputError(f"{label} has no platform.yaml")
    catalog = load_catalog(tree / "components")
    platform = load_platform(tree / "platform.yaml", catalog, f"{label}:platform.yaml")
    plan = make_plan(platform, catalog)
    write_tree(render(plan, read_inputs(plan, tree, cache.directories)), tree)
    if platform.source_mode == "vendored":
        write_lock(tree / LOCK_FILE, vendor(plan.source_roots, cache, tree / "vendor"))
    result: Snapshot = {}
    with build_tree(tree, platform.source_mode, cache, platform.mirrors) as build_root, Builder(project_root, build_root, build_cache) as builder:
        for env_plan in plan.environments:
            built = build_environment(project_root, env_plan, jobs, progress, build_root, builder=builder)
            result[env_plan.name] = {c.name: c.objects for c in built.components}
    return result


def snapshot_working_tree(project_root: Path, label: str, cache: SourceCache, jobs: int | None = None,
                          progress: Progress | None = None, build_cache: BuildCache | None = None) -> Snapshot:
    """A snapshot of the working tree's spec and catalog as they are now."""
    with working_copy(project_root) as tree:
        return snapshot(tree, project_root, label, cache, jobs, progress, build_cache)


def compare_revisions(project_root: Path, base: str, head: str | None, cache: SourceCache, jobs: int | None = None,
                      progress_for: Callable[[str], Progress | None] = lambda label: None,
                      build_cache: BuildCache | None = None) -> DiffReport:
    """What changes from git revision base to revision head (None: the working tree); progress_for gives the
    progress callback of each build by its label."""
    with ExitStack() as stack:
        base_tree = stack.enter_context(git_revision(project_root, base))
        head_tree = stack.enter_context(git_revision(project_root, head) if head else working_copy(project_root))
        before = snapshot(base_tree, project_root, base, cache, jobs, progress_for(f"build {base}"), build_cache)
        after = snapshot(head_tree, project_root, head or "working tree", cache, jobs, progress_for("build head"), build_cache)
    return compare(before, after)
