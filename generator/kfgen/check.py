"""The work of `kfgen check`: generated files against a fresh render (drift), and every built object
through the object checks and the policies and, given a cluster, the API server's dry run.

conftest checks one environment in a thread of its own while the object checks run on it and the next
environment builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .apply import ApplyReport, Cluster, Progress, Rejection, apply_environment, rejections
from .build import EnvironmentBuild
from .buildcache import BuildCache
from .credentials import prerequisite_files
from .objects import EnvironmentReport, Finding
from .objects.controllers import controller_crd_files
from .objects.verdicts import SharedVerdicts, checked_environment
from .output import drift
from .plan import EnvironmentPlan, Plan
from .policies import PolicyException, PolicyReport, load_suite, unused_exceptions
from .policies import Violation as PolicyViolation
from .policies import checked_environment as checked_policies
from .render import RenderedTree
from .sources import SourceCache


@dataclass(frozen=True)
class CheckedEnvironment:
    report: EnvironmentReport
    build_seconds: float


@dataclass(frozen=True)
class CheckReport:
    drift: list[str]  # generated files that differ from a fresh render
    environments: list[CheckedEnvironment]
    policies: list[PolicyReport]
    unused_exceptions: list[PolicyException]
    server: list[ApplyReport]  # the API server's dry run, when a cluster was given
    outside_files: list[Path] | None  # what the check read from outside the project; None: too much to record
    unpinned: list[Finding] = field(default_factory=list)  # images an image lock does not pin (images.py)

    @property
    def findings(self) -> list[Finding]:
        return [f for checked in self.environments for f in checked.report.findings] + self.unpinned

    @property
    def violations(self) -> list[PolicyViolation]:
        return [v for report in self.policies for v in report.violations]

    @property
    def rejections(self) -> list[Rejection]:
        return rejections(self.server)

    @property
    def passed(self) -> bool:
        return not (self.drift or self.findings or self.rejections or self.violations or self.unused_exceptions)


def check_project(
    root: Path,
    plan: Plan,
    rendered: RenderedTree,
    builds: Iterable[tuple[EnvironmentPlan, EnvironmentBuild]] | None,
    sources: SourceCache,
    cache: BuildCache | None,
    server: str | None = None,
    progress_for: Callable[[str], Progress | None] = lambda label: None,
    every_environment: bool = True,
) -> CheckReport:
    """Check the project at root: its generated files against rendered and, unless builds is None, each
    environment as builds yields it. server is the kubeconfig of a cluster for the dry run; with
    every_environment, an exception no environment needs is reported as unused."""
    outside: list[Path] | None = None if plan.platform.source_mode == "remote" else []
    drifted = drift(rendered, root)
    checked: list[CheckedEnvironment] = []
    server_reports: list[ApplyReport] = []
    policy_reports: list[PolicyReport] = []
    unused: list[PolicyException] = []
    unpinned: list[Finding] = []
    if builds is not None:
        from .images import unpinned_findings
        from .mirror import read_inputs

        mirror_inputs = read_inputs(plan, root, sources.directories)
        shared = SharedVerdicts()
        cluster = Cluster(server) if server else None
        policies = load_suite(root)
        env_plans: list[EnvironmentPlan] = []
        with ThreadPoolExecutor(max_workers=1) as conftest_runs:
            pending: list[Future[PolicyReport]] = []
            for env_plan, build in builds:
                env_plans.append(env_plan)
                pending.append(conftest_runs.submit(checked_policies, policies, env_plan.environment, build.components, cache))
                checked.append(CheckedEnvironment(checked_environment(plan, root, env_plan, build, sources, cache, shared), build.seconds))
                unpinned.extend(unpinned_findings(env_plan, plan.platform.kubeflow_version,
                                                  [(c.name, c.objects) for c in build.components], mirror_inputs))
                if cluster is not None:
                    server_reports.append(apply_environment(cluster, build, dry_run=True, progress=progress_for(f"server {env_plan.name}")))
            policy_reports = [result.result() for result in pending]
        if outside is not None:
            outside.extend(controller_crd_files(plan.platform.gitops.engine, sources))
            outside.extend(path for env_plan in env_plans for path in prerequisite_files(env_plan.environment))
        if policy_reports and every_environment:  # an exception is unused only if no environment needs it
            unused = unused_exceptions(policies.exceptions, policy_reports)
    return CheckReport(drifted, checked, policy_reports, unused, server_reports, outside, unpinned)
