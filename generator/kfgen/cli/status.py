"""kfgen status: the GitOps controllers' view of each component, against the latest publish (see status.py)."""

from __future__ import annotations

import argparse
import json

from .apply import add_kubeconfig_argument
from .common import add_project_arguments, load_project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", action="append", default=[], help="environment (repeatable; default: the spec's default environment)")
    add_kubeconfig_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..status import platform_status

    project = load_project(args)
    env_plans = [project.plan.environment(name) for name in args.env or [project.platform.default_environment]]
    statuses = platform_status(project.root, project.platform.gitops, project.platform.name, env_plans, args.kubeconfig)
    if args.output == "json":
        print(json.dumps({"ok": all(s.ok for s in statuses), "environments": [
            {"environment": s.environment, "engine": s.engine, "namespace": s.namespace, "branch": s.branch, "published": s.published,
             "ok": s.ok, "objects": [{"component": o.component, "kind": o.kind, "name": o.name, "found": o.found, "ok": o.ok,
                                      "sync": o.sync, "health": o.health, "revision": o.revision, "message": o.message,
                                      "problems": list(o.problems)} for o in s.objects]}
            for s in statuses]}))
    else:
        for s in statuses:
            published = s.published[:12] if s.published else "unknown here"
            print(f"{s.environment} ({s.engine} in namespace {s.namespace}): latest publish {s.branch} {published}")
            width = max([len(o.component or o.name) for o in s.objects] + [9])
            sync_width = max([len(o.sync) for o in s.objects] + [4])
            for o in s.objects:
                verdict = "ok" if o.ok else "; ".join(o.problems)
                revision = o.revision.rsplit(":", 1)[-1][:12] if o.revision else "-"
                print(f"  {o.component or o.name:<{width}}  {o.kind:<14} {o.sync or '-':<{sync_width}}  "
                      f"{o.health or '-':<11} {revision:<12}  {verdict}")
                if o.message and not o.ok:
                    print(f"  {'':<{width}}  {o.message.splitlines()[0][:300]}")
            fine = sum(1 for o in s.objects if o.ok)
            print(f"status {s.environment}: {fine} of {len(s.objects)} objects synced, healthy and on the latest publish"
                  if not s.ok else f"status {s.environment}: all {len(s.objects)} objects synced, healthy and on the latest publish")
    return 0 if all(s.ok for s in statuses) else 1
