"""kfgen check, run in full (see check.py): generated files equal a fresh render (drift), and every built
object passes the object checks and the policies (and, with --server, the API server's dry run)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..apply import summary as apply_summary
from ..check import CheckReport, check_project
from ..objects import GITOPS_COMPONENT, Finding
from .common import (
    build_cache,
    built_environments,
    load_project,
    progress_printer,
    rendered,
    source_cache,
)


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def _source_file(finding: Finding) -> str:
    if finding.component == GITOPS_COMPONENT:
        return f"gitops/{finding.environment}/kustomization.yaml"
    return f"overlays/{finding.environment}/{finding.component}/kustomization.yaml"


@dataclass(frozen=True)
class CheckOutcome:
    exit_code: int
    outside_files: list[Path] | None  # what the check read from outside the project; None: too much to record


def run_check(args: argparse.Namespace) -> CheckOutcome:
    project = load_project(args)
    env_plans = [project.plan.environment(args.env)] if args.env else list(project.plan.environments)
    builds = None if args.drift_only else built_environments(project, args, env_plans)
    report = check_project(project.root, project.plan, rendered(project, args), builds, source_cache(args, project.root),
                           build_cache(args, project.root), args.server, progress_printer, every_environment=not args.env)
    if args.output == "json":
        _print_json(report)
    else:
        _print_text(report, github=args.output == "github")
    return CheckOutcome(0 if report.passed else 1, report.outside_files)


def _print_json(report: CheckReport) -> None:
    print(json.dumps({
        "drift": report.drift,
        "policy": [v.__dict__ for v in report.violations],
        "unusedExceptions": [e.__dict__ for e in report.unused_exceptions],
        "server": [{"environment": r.environment, "component": r.component, "kind": r.ref.kind, "namespace": r.ref.namespace,
                    "name": r.ref.name, "message": r.message} for r in report.rejections],
        "environments": [{"environment": c.report.environment, "objects": c.report.objects, "findings": len(c.report.findings),
                          "build_seconds": round(c.build_seconds, 3), "check_seconds": round(c.report.seconds, 3)}
                         for c in report.environments],
        "findings": [asdict(f) for f in report.findings],
    }))


def _print_text(report: CheckReport, github: bool) -> None:
    drifted, findings, violations, refused = report.drift, report.findings, report.violations, report.rejections
    for path in drifted:
        print(f"::error file={_escape(path, True)}::generated file differs from a fresh render; run `kfgen render`" if github
              else f"drift: {path} differs from a fresh render")
    for f in findings:
        if github:
            title = _escape(f"kfgen check {f.environment}/{f.component}", True)
            print(f"::error file={_escape(_source_file(f), True)},title={title}::{_escape(f.format())}")
        else:
            print(f.format())
    for checked in report.environments:
        count = len(checked.report.findings)
        print(f"objects {checked.report.environment}: {checked.report.objects} objects validated, {count} finding{'' if count == 1 else 's'}, "
              f"built in {checked.build_seconds:.1f}s, checked in {checked.report.seconds:.2f}s")
    for v in violations:
        print(f"::error title=policy {v.rule}::{_escape(v.format())}" if github else f"policy: {v.format()}")
    for e in report.unused_exceptions:
        print(f"policies/exceptions.yaml: exception for [{e.rule}] {e.object} matches nothing; remove it")
    for rejection in refused:
        print(f"server: {rejection.format()}")
    for server in report.server:
        print(f"server {apply_summary(server)}")
    summary = [f"{len(drifted)} generated files drifted; run `kfgen render`" if drifted else "no drift"]
    if report.environments:
        summary.append(f"{len(findings)} object findings in {len(report.environments)} environments" if findings
                       else f"every object of {len(report.environments)} environments valid")
    if report.policies:
        excepted = sum(len(r.excepted) for r in report.policies)
        summary.append(f"{len(violations)} policy violations" if violations
                       else f"every policy passes ({excepted} documented exceptions)")
    if report.unused_exceptions:
        summary.append(f"{len(report.unused_exceptions)} unused policy exceptions")
    if report.server:
        summary.append(f"{len(refused)} objects rejected by the API server" if refused else "the API server accepts every object")
    print("check: " + "; ".join(summary))
