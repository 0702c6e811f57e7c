"""The dependency graph of one environment, drawn: its components in waves (the order they are applied
in) and an edge from each dependency to what needs it, as a Mermaid flowchart or a Graphviz digraph."""

from __future__ import annotations

from .plan import EnvironmentPlan


def mermaid(env_plan: EnvironmentPlan) -> str:
    lines = ["flowchart LR"]
    for wave in sorted({p.wave for p in env_plan.components}):
        lines.append(f"  subgraph wave{wave}[wave {wave}]")
        lines.extend(f"    {p.name}" for p in env_plan.components if p.wave == wave)
        lines.append("  end")
    for planned in env_plan.components:
        lines.extend(f"  {d} --> {planned.name}" for d in planned.needs)
    return "\n".join(lines) + "\n"


def dot(env_plan: EnvironmentPlan) -> str:
    lines = [f'digraph "{env_plan.name}" {{', "  rankdir=LR;"]
    for wave in sorted({p.wave for p in env_plan.components}):
        names = " ".join(f'"{p.name}";' for p in env_plan.components if p.wave == wave)
        lines.append(f'  subgraph "cluster_wave{wave}" {{ label="wave {wave}"; {names} }}')
    for planned in env_plan.components:
        lines.extend(f'  "{d}" -> "{planned.name}";' for d in planned.needs)
    return "\n".join(lines) + "\n}\n"
