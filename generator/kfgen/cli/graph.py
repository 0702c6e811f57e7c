"""kfgen graph: draw the components of an environment and the order they are applied in."""

from __future__ import annotations

import argparse

from ..plan import EnvironmentPlan
from .common import add_project_arguments, load_project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment (default: the spec's default environment)")
    parser.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="output format")
    parser.set_defaults(run=run)


def mermaid(env_plan: EnvironmentPlan) -> str:
    lines = ["flowchart LR"]
    for wave in sorted({p.wave for p in env_plan.components}):
        lines.append(f"  subgraph wave{wave}[wave {wave}]")
        lines.extend(f"    {p.name}" for p in env_plan.components if p.wave == wave)
        lines.append("  end")
    enabled = {p.name for p in env_plan.components}
    for planned in env_plan.components:
        lines.extend(f"  {d} --> {planned.name}" for d in planned.component.depends_on if d in enabled)
    return "\n".join(lines) + "\n"


def dot(env_plan: EnvironmentPlan) -> str:
    lines = [f'digraph "{env_plan.name}" {{', "  rankdir=LR;"]
    for wave in sorted({p.wave for p in env_plan.components}):
        names = " ".join(f'"{p.name}";' for p in env_plan.components if p.wave == wave)
        lines.append(f'  subgraph "cluster_wave{wave}" {{ label="wave {wave}"; {names} }}')
    enabled = {p.name for p in env_plan.components}
    for planned in env_plan.components:
        lines.extend(f'  "{d}" -> "{planned.name}";' for d in planned.component.depends_on if d in enabled)
    return "\n".join(lines) + "\n}\n"


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    print(mermaid(env_plan) if args.format == "mermaid" else dot(env_plan), end="")
    return 0
