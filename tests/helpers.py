"""Helpers the tests share: the project, its shipped spec, temporary copies of it, and the real CLI.

Tests import them from here; conftest.py holds only fixtures and hooks. Importing this module also
points temporary projects at the project's pinned tools and at the source cache.
"""

from __future__ import annotations

import atexit
import copy
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from kfgen.build import Builder, EnvironmentBuild, build_environment
from kfgen.catalog import load_catalog
from kfgen.mirror import read_inputs
from kfgen.output import write_tree
from kfgen.plan import make_plan
from kfgen.render import render
from kfgen.sources import LOCK_FILE, SourceCache, vendor, write_lock
from kfgen.spec import load_platform

PROJECT = Path(__file__).resolve().parents[1]
# Temporary projects have no .tools of their own: they use the project's pinned kustomize.
os.environ.setdefault("KFGEN_KUSTOMIZE", str(PROJECT / ".tools" / "bin" / "kustomize"))
os.environ.setdefault("KFGEN_CONFTEST", str(PROJECT / ".tools" / "bin" / "conftest"))
os.environ.setdefault("KFGEN_YAML2JSON", str(PROJECT / ".tools" / "bin" / "yaml2json"))
os.environ.setdefault("KFGEN_KUSTOMIZE_WORKER", str(PROJECT / ".tools" / "bin" / "kustomize-worker"))


def source_cache_dirs() -> list[Path]:
    configured = os.environ.get("KFGEN_SOURCE_CACHE")
    if configured:
        return [Path(d) for d in configured.split(os.pathsep) if d]
    return [PROJECT.parent / "shared" / "upstream"]


# Temporary projects have no ../shared beside them: point them at the same source cache.
os.environ.setdefault("KFGEN_SOURCE_CACHE", os.pathsep.join(str(d) for d in source_cache_dirs()))


# The CLI runs of every temporary project share one build cache, as checkouts in CI would: its keys
# are contents, not paths. The cache's own tests (test_cache.py) use caches of their own.
SHARED_CACHE = Path(tempfile.mkdtemp(prefix="kfgen-test-cache-"))
atexit.register(shutil.rmtree, SHARED_CACHE, True)


def run_kfgen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI, as a user runs it."""
    env = dict(os.environ, KFGEN_CACHE_DIR=str(SHARED_CACHE))
    return subprocess.run([sys.executable, "-m", "kfgen", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def shipped_spec() -> dict[str, Any]:
    with open(PROJECT / "platform.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def tree_snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class TempProject:
    """A copy of the project's inputs (spec, catalog and policies) in a temporary folder."""

    def __init__(self, root: Path, spec: dict[str, Any] | None = None):
        self.root = root
        self._builder: Builder | None = None
        shutil.copytree(PROJECT / "components", root / "components")
        shutil.copytree(PROJECT / "policies", root / "policies")
        shutil.copytree(PROJECT / "customizations", root / "customizations")  # the folders the shipped spec names
        self.write_spec(spec if spec is not None else shipped_spec())

    @property
    def spec_path(self) -> Path:
        return self.root / "platform.yaml"

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")

    def kfgen(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_kfgen(*args, "--project", str(self.root), cwd=self.root)

    def plan(self):
        catalog = load_catalog(self.root / "components")
        return make_plan(load_platform(self.spec_path, catalog), catalog)

    def render(self) -> None:
        plan = self.plan()
        write_tree(render(plan, read_inputs(plan, self.root, source_cache_dirs())), self.root)

    def vendor(self) -> None:
        entries = vendor(self.plan().source_roots, SourceCache(source_cache_dirs()), self.root / "vendor")
        write_lock(self.root / LOCK_FILE, entries)

    def build(self, env: str) -> EnvironmentBuild:
        """Builds share one Builder, so each component's base is built once for all environments."""
        if self._builder is None:
            self._builder = Builder(PROJECT, self.root)
        return build_environment(self.root, self.plan().environment(env), builder=self._builder)


def spec_for_release(release: str, all_components: bool = False) -> dict[str, Any]:
    """The shipped spec moved to another release (and Kubernetes version it supports)."""
    spec = copy.deepcopy(shipped_spec())
    spec["kubeflow"]["version"] = release
    spec["kubernetes"]["version"] = "1.33"
    if all_components:
        catalog = load_catalog(PROJECT / "components")
        spec["components"] = {name: {"enabled": True} for name, c in catalog.components.items() if release in c.releases}
        for env in spec["environments"]:  # every component installed everywhere: none is the cluster's own
            for config in (env.get("components") or {}).values():
                config.pop("provided", None)
                config.pop("enabled", None)
    return spec


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return (group, obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def provided_crds_of(plan: Any, env: str) -> tuple[dict[str, Any], ...]:
    """The CRDs of the components environment env's cluster provides, from the source caches."""
    from kfgen.objects.provided import provided_crds
    from kfgen.sources import SourceCache

    return provided_crds(plan, plan.environment(env), SourceCache(source_cache_dirs())).crds
