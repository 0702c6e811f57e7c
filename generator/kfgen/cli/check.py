"""kfgen check: generated files equal a fresh render (drift), and every built object passes the object checks."""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..buildcache import BuildCache, digest_text
from ..credentials import prerequisite_files
from ..gitops import gitops_documents
from ..output import drift
from ..plan import EnvironmentPlan, Plan
from ..refs import RemoteDir
from ..render import render
from ..yamlio import load_all_plain
from .common import (
    add_build_arguments,
    add_project_arguments,
    add_source_arguments,
    build_cache,
    built_environments,
    load_project,
    progress_printer,
    source_cache,
)

# The builder, the object checks, the policies and the cluster client are imported where the built
# environments are checked: `check --drift-only` needs only a fresh render, and they take 30 ms to import.
if TYPE_CHECKING:
    from ..apply import Rejection
    from ..objects import EnvironmentReport, Finding
    from ..policies import PolicyException, PolicyReport
    from ..sources import SourceCache

# The CRDs of the GitOps controllers, for validating the objects under gitops/<env>/.
CONTROLLER_CRDS: dict[str, tuple[RemoteDir, ...]] = {
    "argocd": (RemoteDir("github.com", "argoproj", "argo-cd", "v3.5.1", "manifests/crds"),),
    "flux": (RemoteDir("github.com", "fluxcd", "source-controller", "v1.9.1", "config/crd/bases"),
             RemoteDir("github.com", "fluxcd", "kustomize-controller", "v1.9.4", "config/crd/bases")),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment to build and check (default: all)")
    parser.add_argument("--drift-only", action="store_true", help="only compare generated files with a fresh render")
    parser.add_argument("--server", metavar="KUBECONFIG", help="also send every object through server-side dry run on this cluster "
                                                               "(in dependency order; CRDs and Namespaces are applied for real)")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def controller_crd_files(engine: str, cache: SourceCache) -> list[Path]:
    files: list[Path] = []
    for root in CONTROLLER_CRDS.get(engine, ()):
        _, folder = cache.find(root)
        files.extend(p for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml")
    return files


def controller_crds(engine: str, cache: SourceCache) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of a GitOps engine, from the source caches."""
    from ..build import find_yaml2json, yaml_to_json_lines

    crds: list[dict[str, Any]] = []
    converter = find_yaml2json(Path(__file__).resolve().parents[3])
    for path in controller_crd_files(engine, cache):
        text = path.read_text(encoding="utf-8")
        documents = ([json.loads(line) for line in yaml_to_json_lines(converter, text).splitlines() if line] if converter
                     else load_all_plain(text))
        crds.extend(doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition")
    return crds


def _verdict_key(project, env_plan: EnvironmentPlan, build, gitops: list[dict[str, Any]], crd_files: list[Path]) -> str | None:
    """Everything a verdict depends on: the checks' code, the objects (by build key), the schemas' inputs."""
    from .. import objects as objects_module

    if not all(c.key for c in build.components):
        return None
    graph = {p.name: list(p.component.depends_on) for p in env_plan.components}
    return digest_text("check", Path(objects_module.__file__).read_text(encoding="utf-8"), project.platform.kubernetes_version,
                       json.dumps([c.key for c in build.components]), json.dumps(graph, sort_keys=True),
                       json.dumps(gitops, sort_keys=True), *(hashlib.sha256(p.read_bytes()).hexdigest() for p in crd_files))


def _checked(project, env_plan: EnvironmentPlan, build, cache: SourceCache, verdicts: BuildCache | None,
             crds: list[list[dict[str, Any]]]) -> EnvironmentReport:
    """The object checks of one environment, or their cached verdict when nothing they depend on changed."""
    from ..objects import EnvironmentReport, Finding, check_environment

    gitops = gitops_objects(project.plan, env_plan)
    engine = project.platform.gitops.engine
    prerequisites = prerequisite_files(env_plan.environment)
    key = _verdict_key(project, env_plan, build, gitops, controller_crd_files(engine, cache) + prerequisites) if verdicts else None
    stored = verdicts.get(key) if key else None
    if stored is not None:
        data = json.loads(stored)
        return EnvironmentReport(data["environment"], data["objects"], tuple(Finding(**f) for f in data["findings"]), 0.0)
    if not crds:
        crds.append(controller_crds(engine, cache))
    report = check_environment(build, project.plan, crds[0], gitops)
    if key:
        verdicts.put(key, json.dumps({"environment": report.environment, "objects": report.objects,
                                      "findings": [asdict(f) for f in report.findings]}))
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


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plans = [project.plan.environment(args.env)] if args.env else list(project.plan.environments)
    drifted = drift(render(project.plan), project.root)
    results: list[tuple[EnvironmentReport, float]] = []
    refused: list[Rejection] = []
    server_summaries: list[str] = []
    policy_reports: list[PolicyReport] = []
    unused: list[PolicyException] = []
    if not args.drift_only:
        from ..apply import Cluster, apply_environment, rejections
        from ..apply import summary as apply_summary
        from ..policies import checked_environment as checked_policies
        from ..policies import find_conftest, load_exceptions, unused_exceptions

        cache = source_cache(args, project.root)
        crds: list[list[dict[str, Any]]] = []  # loaded once, and only when a verdict is not cached
        verdicts = build_cache(args, project.root)
        cluster = Cluster(args.server) if args.server else None
        policy_dir = project.root / "policies"
        exceptions = load_exceptions(policy_dir)
        conftest = find_conftest(project.root)
        server = []
        for env_plan, build in built_environments(project, args, env_plans):
            results.append((_checked(project, env_plan, build, cache, verdicts, crds), build.seconds))
            policy_reports.append(checked_policies(conftest, policy_dir, env_plan.environment, {c.name: c.objects for c in build.components},
                                                   exceptions, verdicts, [c.key for c in build.components]))
            if cluster is not None:
                server.append(apply_environment(cluster, build, dry_run=True, progress=progress_printer(f"server {env_plan.name}")))
        refused = rejections(server)
        server_summaries = [apply_summary(report) for report in server]
        if policy_reports and not args.env:  # an exception is unused only if no environment needs it
            unused = unused_exceptions(exceptions, policy_reports)
    findings = [f for report, _ in results for f in report.findings]
    violations = [v for report in policy_reports for v in report.violations]
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
        for line in server_summaries:
            print(f"server {line}")
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
        if server_summaries:
            summary.append(f"{len(refused)} objects rejected by the API server" if refused else "the API server accepts every object")
        print("check: " + "; ".join(summary))
    return 1 if drifted or findings or refused or violations or unused else 0
