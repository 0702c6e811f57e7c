"""The plan: which components each environment installs, in which order.

Order comes from the catalog's dependency graph: a component comes after everything it depends on,
and ties break by name so that the order is stable. A component's wave is the length of the longest
dependency chain below it, so that components of one wave can be applied together.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog, Component, Release, Variant
from .errors import CatalogError, Problem
from .refs import RemoteDir
from .spec import ComponentConfig, Environment, Platform
from .variants import base_name, named_variant, variant_source


@dataclass(frozen=True)
class PlannedComponent:
    component: Component
    config: ComponentConfig
    wave: int
    needs: tuple[str, ...] = ()  # the installed components it is applied after, in this environment
    variant: Variant | None = None  # the cloud variant the environment's provider selects

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def base(self) -> str:
        """The folder below base/ this environment's overlay builds on."""
        return base_name(self.component, self.variant)

    def source(self, release: str) -> Release:
        """The release as this environment builds it: its variant's paths and images where it has one."""
        return variant_source(self.component, release, self.variant)


@dataclass(frozen=True)
class EnvironmentPlan:
    environment: Environment
    components: tuple[PlannedComponent, ...]  # in dependency order

    @property
    def name(self) -> str:
        return self.environment.name


@dataclass(frozen=True)
class Plan:
    platform: Platform
    catalog: Catalog
    environments: tuple[EnvironmentPlan, ...]

    def environment(self, name: str) -> EnvironmentPlan:
        self.platform.environment(name)  # raises a helpful error for unknown names
        return next(e for e in self.environments if e.name == name)

    @property
    def base_components(self) -> list[Component]:
        """Components enabled in at least one environment: each gets a base."""
        names = {p.name for env in self.environments for p in env.components}
        return [self.catalog.components[name] for name in sorted(names)]

    @property
    def bases(self) -> list[tuple[str, Component, Release]]:
        """Each base the environments build on, by folder name below base/: one per component and variant
        in use, with the release as that variant builds it."""
        release = self.platform.kubeflow_version
        found = {p.base: (p.base, p.component, variant_source(p.component, release, p.variant))
                 for env in self.environments for p in env.components}
        return [found[name] for name in sorted(found)]

    @property
    def source_roots(self) -> list[RemoteDir]:
        """Every upstream kustomization root the enabled components build from, in every variant in use."""
        return sorted({root for _, _, source in self.bases for root in source.roots})


def find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle as a list of names (first repeated last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def dependency_order(graph: dict[str, tuple[str, ...]]) -> list[str]:
    """Topological order, dependencies first, ties by name."""
    cycle = find_cycle(graph)
    if cycle:
        raise CatalogError([Problem("components/", 0, 0, "dependsOn", "dependency cycle: " + " -> ".join(cycle))])
    order: list[str] = []
    placed: set[str] = set()
    remaining = sorted(graph)
    while remaining:
        ready = [n for n in remaining if all(d in placed or d not in graph for d in graph[n])]
        order.extend(ready)
        placed.update(ready)
        remaining = [n for n in remaining if n not in placed]
    return order


def waves(graph: dict[str, tuple[str, ...]], order: list[str]) -> dict[str, int]:
    wave: dict[str, int] = {}
    for name in order:
        wave[name] = 1 + max((wave[d] for d in graph[name] if d in wave), default=-1)
    return wave


def make_plan(platform: Platform, catalog: Catalog) -> Plan:
    graph = {name: c.depends_on + tuple(r.component for r in c.requires) for name, c in catalog.components.items()}
    order = dependency_order(graph)
    environments = []
    for environment in platform.environments:
        enabled = {name for name in environment.enabled}
        # Within an environment, a setting may add a dependency (catalog `requires`); the catalog-wide
        # order above already puts every possible dependency first, so the added edges agree with it.
        needs = {name: catalog.components[name].needs(environment.components[name].settings) for name in enabled}
        sub = {name: tuple(d for d in needs[name] if d in enabled) for name in order if name in enabled}
        wave = waves(sub, [n for n in order if n in enabled])
        planned = tuple(
            PlannedComponent(catalog.components[name], environment.components[name], wave[name], sub[name],
                             named_variant(catalog.components[name], platform.kubeflow_version, environment.components[name].variant))
            for name in order if name in enabled
        )
        environments.append(EnvironmentPlan(environment, planned))
    return Plan(platform, catalog, tuple(environments))
