"""The object checks of `kfgen check`, with their verdicts kept in the build cache.

An environment's report is stored under a key of everything it depends on (the checks' code, the
objects by their build keys, the dependency graph, the GitOps objects, the controllers' and the
prerequisites' CRDs) and given back while none of it changes. Beside it, the schema verdict of each
object is kept, so that a check after a small change validates only the objects that changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..build import EnvironmentBuild
from ..buildcache import BuildCache, digest_text
from ..credentials import prerequisite_files
from ..plan import EnvironmentPlan, Plan
from ..sources import SourceCache
from .checks import check_environment, code_digest
from .controllers import controller_crd_files, controller_crds, gitops_objects
from .findings import EnvironmentReport, Finding, Violation
from .provided import provided_crds


@dataclass
class SharedVerdicts:
    """What the environments of one check share: the controllers' CRDs, loaded when first needed, and
    the schema verdicts found so far. A verdict is keyed on the object and every schema it can be held
    to, so an object built alike in several environments is validated once."""

    controller_crds: list[dict[str, Any]] | None = None
    verdicts: dict[str, tuple[Violation, ...]] = field(default_factory=dict)


def _report_key(plan: Plan, env_plan: EnvironmentPlan, build: EnvironmentBuild, gitops: list[dict[str, Any]],
                crd_files: list[Path], provided: str) -> str | None:
    """Everything a report depends on: the checks' code, the objects (by build key), the schemas' inputs."""
    if not all(c.key for c in build.components):
        return None
    graph = {p.name: list(p.needs) for p in env_plan.components}
    return digest_text("check", code_digest().hex(), plan.platform.kubernetes_version,
                       json.dumps([c.key for c in build.components]), json.dumps(graph, sort_keys=True),
                       json.dumps(gitops, sort_keys=True), provided, *(hashlib.sha256(p.read_bytes()).hexdigest() for p in crd_files))


def checked_environment(plan: Plan, root: Path, env_plan: EnvironmentPlan, build: EnvironmentBuild, sources: SourceCache,
                        cache: BuildCache | None, shared: SharedVerdicts) -> EnvironmentReport:
    """The object checks of one environment of the project at root, or their stored report when nothing they
    depend on changed."""
    gitops = gitops_objects(plan, env_plan)
    engine = plan.platform.gitops.engine
    prerequisites = prerequisite_files(env_plan.environment)
    provided = provided_crds(plan, env_plan, sources, cache)
    key = _report_key(plan, env_plan, build, gitops, controller_crd_files(engine, sources) + prerequisites, provided.digest) if cache else None
    stored = cache.get(key) if cache and key else None
    if stored is not None:
        data = json.loads(stored)
        return EnvironmentReport(data["environment"], data["objects"], tuple(Finding(**f) for f in data["findings"]), 0.0)
    if shared.controller_crds is None:
        shared.controller_crds = controller_crds(engine, sources, cache)
    # The schema verdicts of the environment's objects at its last check (most objects did not change),
    # and those of the environments checked before it in this run.
    known_key = digest_text("object-verdicts", str(root), env_plan.name)
    stored = cache.get(known_key) if cache else None
    known = {digest: tuple(Violation(*v) for v in found) for digest, found in json.loads(stored).items()} if stored else {}
    report = check_environment(build, plan, shared.controller_crds, gitops, {**known, **shared.verdicts}, provided.crds)
    shared.verdicts.update(report.verdicts)
    if cache and key:
        cache.put(key, json.dumps({"environment": report.environment, "objects": report.objects,
                                   "findings": [asdict(f) for f in report.findings]}))
        cache.put(known_key, json.dumps({digest: [[v.field, v.message] for v in found] for digest, found in report.verdicts.items()}))
    return report
