"""kfgen graph: draw the components of an environment and the order they are applied in."""

from __future__ import annotations

import argparse

from ..graph import dot, mermaid
from .common import add_project_arguments, load_project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment (default: the spec's default environment)")
    parser.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="output format")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    print(mermaid(env_plan) if args.format == "mermaid" else dot(env_plan), end="")
    return 0
