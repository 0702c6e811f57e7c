"""The platform spec: platform.yaml loaded and validated against its JSON Schema, and the typed Platform
it resolves into (resolve.py does the resolving, per environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .errors import Problem, SpecError
from .schemas import did_you_mean, validate
from .yamlio import Document, load_file


@dataclass(frozen=True)
class TopologySpread:
    topology_key: str
    max_skew: int
    when_unsatisfiable: str


@dataclass(frozen=True)
class Scheduling:
    """Where pods run: each field None (or empty) keeps upstream's placement."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] | None = None
    affinity: dict[str, Any] = field(default_factory=dict)
    topology_spread: TopologySpread | None = None
    priority_class_name: str | None = None

    def over(self, fallback: Scheduling) -> Scheduling:
        """This scheduling, with fallback's value for each field this one leaves out."""
        return Scheduling(
            node_selector=self.node_selector or fallback.node_selector,
            tolerations=self.tolerations if self.tolerations is not None else fallback.tolerations,
            affinity=self.affinity or fallback.affinity,
            topology_spread=self.topology_spread or fallback.topology_spread,
            priority_class_name=self.priority_class_name or fallback.priority_class_name,
        )

    @property
    def empty(self) -> bool:
        return self == Scheduling()


@dataclass(frozen=True)
class ComponentConfig:
    """A component's resolved configuration in one environment."""

    enabled: bool
    replicas: int | None
    resources: dict[str, Any]
    images: tuple[dict[str, str], ...]
    settings: dict[str, Any]
    scheduling: Scheduling = Scheduling()
    customizations: tuple[str, ...] = ()  # kustomize Component folders, relative to the project
    provided: bool = False  # the cluster runs it already: not installed, its dependents satisfied
    provided_at: Problem | None = None  # where the spec says so, for errors found later (a message to fill in)
    variant: str | None = None  # the catalog variant its provider and settings choose (variants.chosen_variant)


@dataclass(frozen=True)
class Cluster:
    name: str
    provider: str
    server: str | None


@dataclass(frozen=True)
class Tls:
    mode: str
    acme_email: str | None = None
    acme_server: str | None = None
    secret_name: str | None = None
    cluster_issuer: str | None = None
    dns01: dict[str, str] | None = None  # the ACME DNS-01 solver's provider and its fields, as written


@dataclass(frozen=True)
class Sizing:
    replicas: int
    high_availability: bool
    resources: dict[str, Any]


@dataclass(frozen=True)
class Grant:
    """A role in a profile for a user or a group (exactly one of them)."""

    role: str  # admin, edit or view
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    owner: str
    contributors: tuple[Grant, ...] = ()
    quota: dict[str, Any] = field(default_factory=dict)  # cpu, memory, gpu, storage, persistentVolumeClaims, pods
    # the cloud identity its pipeline steps reach the Pipelines object store with, instead of the environment's
    object_store_identity: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretStore:
    kind: str
    name: str


@dataclass(frozen=True)
class Secrets:
    """Where an environment's credentials come from."""

    backend: str  # local, existing, externalSecret or sops
    store: SecretStore | None = None
    key_prefix: str = ""
    refresh_interval: str = "1h"
    path: str | None = None


@dataclass(frozen=True)
class Connector:
    id: str
    type: str
    name: str
    config: dict[str, Any]


@dataclass(frozen=True)
class StaticUser:
    email: str
    username: str


@dataclass(frozen=True)
class ExternalOidc:
    issuer: str
    client_id: str
    groups_claim: str
    username_claim: str


@dataclass(frozen=True)
class Identity:
    provider: str  # dex or oidc
    connectors: tuple[Connector, ...] = ()
    static_users: tuple[StaticUser, ...] = ()
    oidc: ExternalOidc | None = None


@dataclass(frozen=True)
class Environment:
    name: str
    stage: str
    cluster: Cluster
    domain: str
    tls: Tls
    sizing: Sizing
    registry_mirror: str | None
    components: dict[str, ComponentConfig]  # every catalog component of the release, enabled or not
    profiles: tuple[Profile, ...]
    secrets: Secrets = Secrets("existing")
    identity: Identity = Identity("dex")
    scheduling: Scheduling = Scheduling()
    trusted_cas: str | None = None  # PEM certificates of internal CAs
    image_pull_secret: str | None = None  # a registry login Secret every platform pod pulls with

    @property
    def enabled(self) -> list[str]:
        return sorted(name for name, config in self.components.items() if config.enabled)

    @property
    def provided(self) -> list[str]:
        """Components the cluster runs already."""
        return sorted(name for name, config in self.components.items() if config.provided)

    def available(self, name: str) -> bool:
        """Whether component name is there for others to use: installed, or provided by the cluster."""
        config = self.components.get(name)
        return config is not None and (config.enabled or config.provided)


@dataclass(frozen=True)
class GitOps:
    engine: str  # argocd, flux or none
    repo_url: str | None
    revision: str  # the branch people merge into, which `kfgen publish` reads
    path: str
    namespace: str
    prune: bool
    self_heal: bool
    hydrated: bool
    sops_secret: str | None
    deploy_branch: str = "deploy/{env}"  # the published branch of each environment; {env} is its name
    sync_from: str = "deployBranch"  # deployBranch or revision

    def branch_for(self, env: str) -> str:
        """The branch the controllers of environment env follow."""
        if self.sync_from == "revision":
            return self.revision
        return self.deploy_branch.replace(ENV_PLACEHOLDER, env)


@dataclass(frozen=True)
class Platform:
    file: str
    name: str
    kubeflow_version: str
    kubernetes_version: str
    source_mode: str
    default_environment: str
    environments: tuple[Environment, ...]
    gitops: GitOps
    manifests_url: str | None = None  # remote mode: a git mirror of kubeflow/manifests, used instead of GitHub

    @property
    def mirrors(self) -> dict[str, str]:
        """Upstream repositories (host/owner/repo) the bases fetch from a mirror, and the mirror's URL."""
        return {KUBEFLOW_MANIFESTS: self.manifests_url} if self.manifests_url else {}

    def environment(self, name: str) -> Environment:
        for environment in self.environments:
            if environment.name == name:
                return environment
        known = [e.name for e in self.environments]
        raise SpecError(f"no environment {name!r}{did_you_mean(name, known)}; the spec has: {', '.join(known)}")


ENV_PLACEHOLDER = "{env}"
KUBEFLOW_MANIFESTS = "github.com/kubeflow/manifests"


def validated(document: Document) -> dict[str, Any]:
    """The spec's data, once it passes platform.schema.json; a SpecError naming every problem otherwise."""
    problems = validate(document, "platform.schema.json")
    if not isinstance(document.data, dict):
        raise SpecError(problems or [document.problem((), "expected a mapping at the top of the spec")])
    if problems:
        raise SpecError(problems)
    return document.data


def load_platform(path: Path, catalog: Catalog, display: str | None = None) -> Platform:
    """platform.yaml at path, validated and resolved against the catalog; display is the name errors give it."""
    from .resolve import resolve  # it builds this module's dataclasses, so it imports this module: import it when used

    return resolve(load_file(path, display or path.name), catalog, path.parent)
