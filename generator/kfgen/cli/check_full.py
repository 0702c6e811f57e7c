"""kfgen check, run in full: generated files equal a fresh render (drift), and every built object passes the
object checks and the policies (and, with --server, the API server's dry run)."""

from __future__ import annotations

import argparse
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import objects as objects_module
from ..apply import ApplyReport, Cluster, apply_environment, rejections
from ..apply import summary as apply_summary
from ..build import cached_json_lines, find_yaml2json
from ..buildcache import BuildCache, digest_text
from ..credentials import prerequisite_files
from ..data import SOURCE_TREE
from ..gitops import gitops_documents
from ..objects import EnvironmentReport, Finding, Violation, check_environment
from ..output import drift
from ..plan import EnvironmentPlan, Plan
from ..policies import PolicyException, PolicyReport, load_suite, unused_exceptions
from ..policies import checked_environment as checked_policies
from ..refs import RemoteDir
from ..sources import SourceCache
from ..yamlio import load_all_plain
from .common import (
    build_cache,
    built_environments,
    load_project,
    progress_printer,
    rendered,
    source_cache,
)

# The CRDs of the GitOps controllers, for validating the objects under gitops/<env>/.
CONTROLLER_CRDS: dict[str, tuple[RemoteDir, ...]] = {
    "argocd": (RemoteDir("github.com", "argoproj", "argo-cd", "v3.5.1", "manifests/crds"),),
    "flux": (RemoteDir("github.com", "fluxcd", "source-controller", "v1.9.1", "config/crd/bases"),
             RemoteDir("github.com", "fluxcd", "kustomize-controller", "v1.9.4", "config/crd/bases")),
}


def controller_crd_files(engine: str, cache: SourceCache) -> list[Path]:
    files: list[Path] = []
    for root in CONTROLLER_CRDS.get(engine, ()):
        _, folder = cache.find(root)
        files.extend(p for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml")
    return files


def controller_crds(engine: str, cache: SourceCache, converted: BuildCache | None = None) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of a GitOps engine, from the source caches (their JSON kept in
    converted, by each file's digest)."""
    crds: list[dict[str, Any]] = []
    converter = find_yaml2json(SOURCE_TREE or Path.cwd())  # a checkout's .tools, else the project's
    for path in controller_crd_files(engine, cache):
        text = path.read_text(encoding="utf-8")
        if converter:
            lines = cached_json_lines(converter, text, converted,
                                      digest_text("controller-crds-json", hashlib.sha256(text.encode()).hexdigest()))
            documents = [json.loads(line) for line in lines.splitlines() if line]
        else:
            documents = load_all_plain(text)
        crds.extend(doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition")
    return crds


def _verdict_key(project, env_plan: EnvironmentPlan, build, gitops: list[dict[str, Any]], crd_files: list[Path]) -> str | None:
    """Everything a verdict depends on: the checks' code, the objects (by build key), the schemas' inputs."""
    if not all(c.key for c in build.components):
        return None
    graph = {p.name: list(p.component.depends_on) for p in env_plan.components}
    return digest_text("check", Path(objects_module.__file__).read_text(encoding="utf-8"), project.platform.kubernetes_version,
                       json.dumps([c.key for c in build.components]), json.dumps(graph, sort_keys=True),
                       json.dumps(gitops, sort_keys=True), *(hashlib.sha256(p.read_bytes()).hexdigest() for p in crd_files))


@dataclass
class _Shared:
    """What the environments of one check share: the controllers' CRDs, loaded when first needed, and
    the schema verdicts found so far. A verdict is keyed on the object and every schema it can be held
    to, so an object built alike in several environments is validated once."""

    controller_crds: list[dict[str, Any]] | None = None
    verdicts: dict[str, tuple[Violation, ...]] = field(default_factory=dict)


def _checked(project, env_plan: EnvironmentPlan, build, cache: SourceCache, verdicts: BuildCache | None,
             shared: _Shared) -> EnvironmentReport:
    """The object checks of one environment, or their cached verdict when nothing they depend on changed."""
    gitops = gitops_objects(project.plan, env_plan)
    engine = project.platform.gitops.engine
    prerequisites = prerequisite_files(env_plan.environment)
    key = _verdict_key(project, env_plan, build, gitops, controller_crd_files(engine, cache) + prerequisites) if verdicts else None
    stored = verdicts.get(key) if key else None
    if stored is not None:
        data = json.loads(stored)
        return EnvironmentReport(data["environment"], data["objects"], tuple(Finding(**f) for f in data["findings"]), 0.0)
    if shared.controller_crds is None:
        shared.controller_crds = controller_crds(engine, cache, verdicts)
    # The schema verdicts of the environment's objects at its last check (most objects did not change),
    # and those of the environments checked before it in this run.
    known_key = digest_text("object-verdicts", str(project.root), env_plan.name)
    stored = verdicts.get(known_key) if verdicts else None
    known = {digest: tuple(Violation(*v) for v in found) for digest, found in json.loads(stored).items()} if stored else {}
    report = check_environment(build, project.plan, shared.controller_crds, gitops, {**known, **shared.verdicts})
    shared.verdicts.update(report.verdicts)
    if key:
        verdicts.put(key, json.dumps({"environment": report.environment, "objects": report.objects,
                                      "findings": [asdict(f) for f in report.findings]}))
        verdicts.put(known_key, json.dumps({digest: [[v.field, v.message] for v in found] for digest, found in report.verdicts.items()}))
    return report


def gitops_objects(plan: Plan, env_plan: EnvironmentPlan) -> list[dict[str, Any]]:
    """The objects under gitops/<env>/, without the kustomizations that list them."""
    return [doc for name, documents in gitops_documents(plan, env_plan).items()
            if name.rsplit("/", 1)[-1] != "kustomization.yaml" for doc in documents]


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def _source_file(finding: Finding) -> str:
    if finding.component == "gitops":
        return f"gitops/{finding.environment}/kustomization.yaml"
    return f"overlays/{finding.environment}/{finding.component}/kustomization.yaml"


@dataclass(frozen=True)
class CheckOutcome:
    exit_code: int
    outside_files: list[Path] | None  # what the check read from outside the project; None: too much to record


def run_check(args: argparse.Namespace) -> CheckOutcome:
    project = load_project(args)
    outside: list[Path] | None = None if project.platform.source_mode == "remote" else []
    env_plans = [project.plan.environment(args.env)] if args.env else list(project.plan.environments)
    drifted = drift(rendered(project), project.root)
    results: list[tuple[EnvironmentReport, float]] = []
    server: list[ApplyReport] = []
    policy_reports: list[PolicyReport] = []
    unused: list[PolicyException] = []
    if not args.drift_only:
        cache = source_cache(args, project.root)
        shared = _Shared()
        verdicts = build_cache(args, project.root)
        cluster = Cluster(args.server) if args.server else None
        policies = load_suite(project.root)
        # conftest checks an environment while this thread checks its objects and builds the next one.
        with ThreadPoolExecutor(max_workers=1) as conftest_runs:
            pending_policies = []
            for env_plan, build in built_environments(project, args, env_plans):
                pending_policies.append(conftest_runs.submit(checked_policies, policies, env_plan.environment, build.components, verdicts))
                results.append((_checked(project, env_plan, build, cache, verdicts, shared), build.seconds))
                if cluster is not None:
                    server.append(apply_environment(cluster, build, dry_run=True, progress=progress_printer(f"server {env_plan.name}")))
            policy_reports = [pending.result() for pending in pending_policies]
        if outside is not None:
            outside.extend(controller_crd_files(project.platform.gitops.engine, cache))
            outside.extend(path for env_plan in env_plans for path in prerequisite_files(env_plan.environment))
    findings = [f for report, _ in results for f in report.findings]
    refused = rejections(server)
    violations = [v for report in policy_reports for v in report.violations]
    if policy_reports and not args.env:  # an exception is unused only if no environment needs it
        unused = unused_exceptions(policies.exceptions, policy_reports)
    if args.output == "json":
        print(json.dumps({
            "drift": drifted,
            "policy": [v.__dict__ for v in violations],
            "unusedExceptions": [e.__dict__ for e in unused],
            "server": [{"environment": r.environment, "component": r.component, "kind": r.ref.kind, "namespace": r.ref.namespace,
                        "name": r.ref.name, "message": r.message} for r in refused],
            "environments": [{"environment": r.environment, "objects": r.objects, "findings": len(r.findings),
                              "build_seconds": round(seconds, 3), "check_seconds": round(r.seconds, 3)} for r, seconds in results],
            "findings": [asdict(f) for f in findings],
        }))
    else:
        github = args.output == "github"
        for path in drifted:
            print(f"::error file={_escape(path, True)}::generated file differs from a fresh render; run `kfgen render`" if github
                  else f"drift: {path} differs from a fresh render")
        for f in findings:
            if github:
                title = _escape(f"kfgen check {f.environment}/{f.component}", True)
                print(f"::error file={_escape(_source_file(f), True)},title={title}::{_escape(f.format())}")
            else:
                print(f.format())
        for report, seconds in results:
            count = len(report.findings)
            print(f"objects {report.environment}: {report.objects} objects validated, {count} finding{'' if count == 1 else 's'}, "
                  f"built in {seconds:.1f}s, checked in {report.seconds:.2f}s")
        for v in violations:
            print(f"::error title=policy {v.rule}::{_escape(v.format())}" if github else f"policy: {v.format()}")
        for e in unused:
            print(f"policies/exceptions.yaml: exception for [{e.rule}] {e.object} matches nothing; remove it")
        for rejection in refused:
            print(f"server: {rejection.format()}")
        for report in server:
            print(f"server {apply_summary(report)}")
        summary = [f"{len(drifted)} generated files drifted; run `kfgen render`" if drifted else "no drift"]
        if results:
            summary.append(f"{len(findings)} object findings in {len(results)} environments" if findings
                           else f"every object of {len(results)} environments valid")
        if policy_reports:
            excepted = sum(len(r.excepted) for r in policy_reports)
            summary.append(f"{len(violations)} policy violations" if violations
                           else f"every policy passes ({excepted} documented exceptions)")
        if unused:
            summary.append(f"{len(unused)} unused policy exceptions")
        if server:
            summary.append(f"{len(refused)} objects rejected by the API server" if refused else "the API server accepts every object")
        print("check: " + "; ".join(summary))
    return CheckOutcome(1 if drifted or findings or refused or violations or unused else 0, outside)
