"""kfgen build: run kustomize on each component overlay of an environment and write the objects."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..build import build_environment, build_tree, format_summary, write_build
from .common import (
    add_build_arguments,
    add_project_arguments,
    add_source_arguments,
    build_cache,
    load_project,
    progress_printer,
    source_cache,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("build", help="build one environment's objects with kustomize")
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment to build (default: the spec's default environment)")
    parser.add_argument("--out", required=True, help="folder for one file of objects per component")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    with build_tree(project.root, project.platform.source_mode, source_cache(args, project.root)) as tree:
        build = build_environment(project.root, env_plan, args.jobs, progress_printer(f"build {env_plan.name}"), tree,
                                  build_cache(args, project.root))
    write_build(build, Path(args.out))
    if args.output == "json":
        print(json.dumps({"environment": build.environment, "seconds": round(build.seconds, 3),
                          "components": [{"name": c.name, "wave": c.wave, "objects": len(c.objects)} for c in build.components]}))
    else:
        print(format_summary(build), end="")
    return 0
