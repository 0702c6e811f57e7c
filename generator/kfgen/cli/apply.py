"""kfgen apply: one environment to a cluster, component by component, with server-side apply and pruning."""

from __future__ import annotations

import argparse
import json
import os

from ..apply import Cluster, apply_environment, summary
from ..credentials import local_secrets_by_component
from ..yamlio import Manifest
from .common import add_build_arguments, add_project_arguments, add_source_arguments, built_environments, load_project, progress_printer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment (default: the spec's default environment)")
    add_kubeconfig_argument(parser)
    parser.add_argument("--dry-run", choices=["server"], help="server-side dry run: validate and admit everything, store nothing "
                                                              "(CRDs and Namespaces are applied for real)")
    parser.add_argument("--no-wait-workloads", action="store_true",
                        help="do not wait for webhooks' Services to have endpoints; webhook configurations are left out")
    parser.add_argument("--no-prune", action="store_true", help="keep objects that left the spec")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for a CRD or a webhook (default 300)")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def add_kubeconfig_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    extra: dict[str, list[Manifest]] = {}
    if env_plan.environment.secrets.backend == "local":
        extra, logins = local_secrets_by_component(project.plan, env_plan, project.root)
        for login in logins:
            print(f"login: {login}")
    cluster = Cluster(args.kubeconfig, args.timeout)
    for _, build in built_environments(project, args, [env_plan]):
        report = apply_environment(cluster, build, extra, dry_run=args.dry_run == "server", wait_workloads=not args.no_wait_workloads,
                                   prune=not args.no_prune, progress=progress_printer(f"apply {env_plan.name}"))
    if args.output == "json":
        print(json.dumps({
            "environment": report.environment, "dryRun": report.dry_run,
            "counts": {a: report.count(a) for a in ("created", "configured", "unchanged", "pruned", "checked")},
            "changes": report.changes,
            "rejections": [{"component": r.component, "kind": r.ref.kind, "namespace": r.ref.namespace, "name": r.ref.name,
                            "message": r.message} for r in report.rejections],
            "skippedWebhooks": [r.name for r in report.skipped],
        }))
    else:
        for rejection in report.rejections:
            print(f"rejected: {rejection.format()}")
        for ref, component in report.pruned():
            print(f"pruned: {component}: {ref.kind_and_name}")
        print(f"apply {summary(report)}")
    return 1 if report.rejections else 0
