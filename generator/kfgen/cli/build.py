"""kfgen build: run kustomize on each component overlay of an environment and write the objects."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..build import format_summary, write_build
from .common import add_build_arguments, add_project_arguments, add_source_arguments, built_environments, load_project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment to build (default: the spec's default environment)")
    parser.add_argument("--out", required=True, help="folder for one file of objects per component")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    for _, build in built_environments(project, args, [env_plan]):
        write_build(build, Path(args.out))  # while the builder is open: the YAML of CRDs is read on demand
    if args.output == "json":
        print(json.dumps({"environment": build.environment, "seconds": round(build.seconds, 3),
                          "components": [{"name": c.name, "wave": c.wave, "objects": len(c.objects)} for c in build.components]}))
    else:
        print(format_summary(build), end="")
    return 0
