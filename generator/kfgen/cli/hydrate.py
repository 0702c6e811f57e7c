"""kfgen hydrate: build environments into plain YAML under rendered/<env>/ for GitOps to sync as is."""

from __future__ import annotations

import argparse

from ..build import write_hydrated
from .common import (
    add_build_arguments,
    add_project_arguments,
    add_source_arguments,
    built_environments,
    load_project,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    add_source_arguments(parser)
    parser.add_argument("--env", action="append", help="environment to hydrate (repeatable; default: all)")
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    names = args.env or [e.name for e in project.platform.environments]
    env_plans = [project.plan.environment(name) for name in names]
    for _, build in built_environments(project, args, env_plans, "hydrate"):
        target = write_hydrated(build, project.root / "rendered", project.platform.file)
        print(f"hydrate: {len(build.objects)} objects of {len(build.components)} components into "
              f"{target.relative_to(project.root)}/")
    return 0
