"""Sizing: replicas, resources and PodDisruptionBudgets of the Deployments the catalog lists as scalable.

Each listed Deployment says whether it may run more than one replica (catalog.ScaledWorkload):
- any: stateless, or it elects a leader on its own; it gets the environment's or component's replicas;
- leaderElection: it gets them too, and where it runs more than one replica the catalog's templates
  switch leader election on (two controllers reconciling the same objects otherwise);
- one: the environment-wide replicas leave it at upstream's one; explicit replicas above one are
  refused when the spec is resolved (replica_problem).
Resources go to every listed Deployment's first container, whatever its scaling. Under high
availability each workload run with more than one replica gets a PodDisruptionBudget (minAvailable 1):
a budget of its own, or upstream's where the catalog names one (disruptionBudget).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .catalog import Component, PatchTemplate, ScaledWorkload

if TYPE_CHECKING:
    from .plan import EnvironmentPlan, PlannedComponent


def _names_regex(names: list[str]) -> str:
    # Names are DNS-1123 names (the catalog schema checks), so they need no escaping.
    return "^(" + "|".join(names) + ")$"


def unscalable(component: Component, release: str) -> list[ScaledWorkload]:
    """The component's Deployments that never run more than one replica."""
    return [w for w in component.releases[release].workloads if w.scaling == "one"]


def replica_problem(component: Component, release: str, replicas: int | None) -> str | None:
    """Why explicit replicas cannot be given to the component, or None."""
    single = unscalable(component, release)
    if replicas is None or replicas <= 1 or not single:
        return None
    reasons = "; ".join(f"{w.name}: {w.reason}" for w in single)
    return (f"{component.name} cannot run {replicas} replicas: {', '.join(w.name for w in single)} must run one "
            f"({reasons}). Leave replicas unset (the environment's sizing scales the rest) or at most 1")


def workload_replicas(workload: ScaledWorkload, explicit: int | None, environment_wide: int | None) -> int | None:
    """Replicas of one workload (None: upstream's), from the component's explicit and the environment's replicas."""
    if explicit is not None:
        return explicit  # above one only where replica_problem allowed it
    if workload.scaling == "one":
        return None
    return environment_wide


class Overlay(Protocol):
    """What sizing needs of an overlay (render._Overlay)."""

    replacements: list[dict[str, Any]]

    def add_patch(self, name: str, documents: list[Any], target: dict[str, str]) -> None: ...
    def add_resource(self, name: str, documents: list[Any]) -> None: ...


def apply_sizing(overlay: Overlay, planned: PlannedComponent, env_plan: EnvironmentPlan, release: str,
                 render: Callable[[PatchTemplate], list[Any]]) -> None:
    """Replicas, leader election, resources and PodDisruptionBudgets of the component's listed Deployments.
    render: renders one of the component's templates in the environment's context."""
    workloads = planned.component.releases[release].workloads
    if not workloads:
        return
    env = env_plan.environment
    counts = {w.name: workload_replicas(w, planned.config.replicas, env.sizing.replicas) for w in workloads}
    for count in sorted({c for c in counts.values() if c is not None}):
        names = [name for name, c in counts.items() if c == count]
        suffix = "" if len(set(counts.values()) - {None}) == 1 else f"-{count}"
        overlay.add_patch(f"replicas{suffix}.yaml", [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                      "metadata": {"name": "scalable"}, "spec": {"replicas": count}}],
                          {"group": "apps", "kind": "Deployment", "name": _names_regex(names)})
    for workload in workloads:
        if workload.scaling == "leaderElection" and (counts[workload.name] or 1) >= 2:
            for patch in workload.leader_election:
                documents = render(patch)
                name = patch.template.name.removesuffix(".j2")
                if patch.kind == "resource":
                    overlay.add_resource(name, documents)
                else:
                    overlay.add_patch(name, documents, dict(patch.target or {}))
    resources = planned.config.resources or env.sizing.resources
    if resources:
        overlay.add_patch("resources.yaml", [[{"op": "add", "path": "/spec/template/spec/containers/0/resources", "value": resources}]],
                          {"group": "apps", "kind": "Deployment", "name": _names_regex([w.name for w in workloads])})
    replicated = [w for w in workloads if (counts[w.name] or 0) >= 2]
    if not env.sizing.high_availability:
        return
    # A pod that two budgets select cannot be evicted at all (the eviction API refuses it), which would
    # block every node drain: where upstream ships a workload's budget, it is tightened to the same
    # minAvailable instead of a second one added. The replace fails the build if upstream's budget
    # stops having minAvailable (maxUnavailable beside it would be invalid).
    shipped = sorted(w.disruption_budget for w in replicated if w.disruption_budget)
    if shipped:
        overlay.add_patch("upstream-poddisruptionbudgets.yaml", [[{"op": "replace", "path": "/spec/minAvailable", "value": 1}]],
                          {"group": "policy", "kind": "PodDisruptionBudget", "name": _names_regex(shipped)})
    own = [w.name for w in replicated if not w.disruption_budget]
    if own:
        budgets = []
        for name in own:
            budgets.append({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                            "metadata": {"name": name, "namespace": planned.component.namespace},
                            "spec": {"minAvailable": 1, "selector": {}}})
            overlay.replacements.append({
                "source": {"kind": "Deployment", "name": name, "fieldPath": "spec.selector.matchLabels"},
                "targets": [{"select": {"kind": "PodDisruptionBudget", "name": name},
                             "fieldPaths": ["spec.selector.matchLabels"], "options": {"create": True}}],
            })
            overlay.replacements.append({
                "source": {"kind": "Deployment", "name": name, "fieldPath": "metadata.namespace"},
                "targets": [{"select": {"kind": "PodDisruptionBudget", "name": name}, "fieldPaths": ["metadata.namespace"]}],
            })
        overlay.add_resource("poddisruptionbudgets.yaml", budgets)
