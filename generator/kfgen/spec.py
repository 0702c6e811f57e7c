"""The platform spec: platform.yaml loaded, validated and resolved per environment.

Values resolve as catalog defaults <- platform-wide `components:` <- the environment's `components:`,
by deep merge (mappings merge, everything else replaces), and the resolved settings are validated
again against each component's settings schema.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .errors import Problem, SpecError
from .schemas import did_you_mean, validate, validate_with
from .yamlio import Document, load_file


@dataclass(frozen=True)
class ComponentConfig:
    """A component's resolved configuration in one environment."""

    enabled: bool
    replicas: int | None
    resources: dict[str, Any]
    images: tuple[dict[str, str], ...]
    settings: dict[str, Any]


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


@dataclass(frozen=True)
class Sizing:
    replicas: int
    high_availability: bool
    resources: dict[str, Any]


@dataclass(frozen=True)
class Profile:
    name: str
    owner: str


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

    @property
    def enabled(self) -> list[str]:
        return sorted(name for name, config in self.components.items() if config.enabled)


@dataclass(frozen=True)
class GitOps:
    engine: str  # argocd, flux or none
    repo_url: str | None
    revision: str
    path: str
    namespace: str
    prune: bool
    self_heal: bool
    hydrated: bool
    sops_secret: str | None


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

    def environment(self, name: str) -> Environment:
        for environment in self.environments:
            if environment.name == name:
                return environment
        known = [e.name for e in self.environments]
        raise SpecError(f"no environment {name!r}{did_you_mean(name, known)}; the spec has: {', '.join(known)}")


_DISABLED = ComponentConfig(False, None, {}, (), {})


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; any other value replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


class _Resolver:
    def __init__(self, document: Document, catalog: Catalog):
        self.document = document
        self.catalog = catalog
        self.problems: list[Problem] = []

    def fail(self, path: tuple[Any, ...], message: str) -> None:
        self.problems.append(self.document.problem(path, message))

    def check_component_names(self, layer: dict[str, Any], path: tuple[Any, ...], release: str) -> None:
        known = sorted(self.catalog.components)
        for name in layer:
            component = self.catalog.components.get(name)
            if component is None:
                self.fail(path + (name,), f"unknown component {name!r}{did_you_mean(name, known)}")
            elif release in self.catalog.kubernetes_versions and release not in component.releases:
                self.fail(path + (name,), f"component {name!r} does not exist in Kubeflow {release}")
            else:
                settings = (layer[name] or {}).get("settings")
                if settings is not None:
                    self._check_settings(component.settings_schema, settings, path + (name, "settings"))

    def _check_settings(self, schema: dict[str, Any], settings: dict[str, Any], path: tuple[Any, ...]) -> None:
        # Layers are partial, so check them without `required`; the merged result is checked whole.
        partial = {key: value for key, value in schema.items() if key != "required"}
        self.problems.extend(validate_with(self.document, partial, settings, path))

    def _check_dependencies(self, path: tuple[Any, ...], env_name: str, components: dict[str, ComponentConfig],
                            platform_layer: dict[str, Any], env_layer: dict[str, Any]) -> None:
        """Every enabled component's dependencies must be enabled too.

        The error points at what the user wrote: the `enabled: false` that turned a dependency off (one
        error listing everything that needs it), else the place the dependent is configured.
        """
        needed_by: dict[str, list[str]] = {}
        for name, config in sorted(components.items()):
            if config.enabled:
                for dependency in self.catalog.components[name].depends_on:
                    if not components.get(dependency, _DISABLED).enabled:
                        needed_by.setdefault(dependency, []).append(name)
        for dependency, dependents in needed_by.items():
            if "enabled" in (env_layer.get(dependency) or {}):
                disabled_at: tuple[Any, ...] | None = path + ("components", dependency, "enabled")
            elif "enabled" in (platform_layer.get(dependency) or {}):
                disabled_at = ("components", dependency, "enabled")
            else:
                disabled_at = None
            if disabled_at is not None:
                names = _and([repr(n) for n in dependents])
                self.fail(disabled_at, f"{dependency!r} is disabled in environment {env_name!r}, but {names} "
                                       f"depend{'s' if len(dependents) == 1 else ''} on it")
                continue
            for name in dependents:
                where = path + ("components", name) if name in env_layer else ("components", name) if name in platform_layer else path
                self.fail(where, f"{name!r} depends on {dependency!r}, which is disabled in environment {env_name!r} "
                                 "(off by default; enable it)")

    def check_quantities(self, resources: Any, path: tuple[Any, ...]) -> None:
        # The schema allows integer quantities; a negative one would only fail in the cluster.
        for section in ("requests", "limits"):
            for key, value in ((resources or {}).get(section) or {}).items():
                if isinstance(value, int) and value < 0:
                    self.fail(path + (section, key), f"{value} is not a Kubernetes quantity: quantities cannot be negative")

    def resolve_environment(self, index: int, env: dict[str, Any], platform_layer: dict[str, Any],
                            release: str, profiles: list[dict[str, Any]]) -> Environment:
        path = ("environments", index)
        env_layer = env.get("components") or {}
        self.check_component_names(env_layer, path + ("components",), release)
        components: dict[str, ComponentConfig] = {}
        for name, component in sorted(self.catalog.components.items()):
            if release not in component.releases:
                continue
            merged = {"enabled": component.enabled_by_default, "settings": component.defaults()}
            for layer in (platform_layer.get(name), env_layer.get(name)):
                if layer:
                    merged = deep_merge(merged, layer)
            components[name] = ComponentConfig(
                enabled=merged["enabled"],
                replicas=merged.get("replicas"),
                resources=merged.get("resources") or {},
                images=tuple(merged.get("images") or ()),
                settings=merged["settings"],
            )
            if merged["enabled"]:
                where = path + ("components", name) if name in env_layer else ("components", name)
                for problem in validate_with(self.document, component.settings_schema, merged["settings"], where + ("settings",)):
                    self.problems.append(problem)
        self._check_dependencies(path, env["name"], components, platform_layer, env_layer)
        tls = env["tls"]
        if tls["mode"] == "acme" and not tls.get("acmeEmail"):
            self.fail(path + ("tls",), "tls mode 'acme' needs acmeEmail")
        if tls["mode"] == "secret" and not tls.get("secretName"):
            self.fail(path + ("tls",), "tls mode 'secret' needs secretName")
        for key in ("acmeEmail", "acmeServer"):
            if key in tls and tls["mode"] != "acme":
                self.fail(path + ("tls", key), f"{key} applies only to tls mode 'acme', not {tls['mode']!r}")
        if "secretName" in tls and tls["mode"] != "secret":
            self.fail(path + ("tls", "secretName"), f"secretName applies only to tls mode 'secret', not {tls['mode']!r}")
        if tls["mode"] in ("self-signed", "acme") and not components.get("cert-manager", _DISABLED).enabled:
            self.fail(path + ("tls", "mode"), f"tls mode {tls['mode']!r} needs the cert-manager component enabled")
        sizing = env.get("sizing") or {}
        replicas = sizing.get("replicas", 1)
        if sizing.get("highAvailability") and replicas < 2:
            self.fail(path + ("sizing", "highAvailability"), f"high availability needs sizing.replicas of at least 2, found {replicas}")
        env_profiles = tuple(
            Profile(p["name"], p["owner"]) for p in profiles
            if not p.get("environments") or env["name"] in p["environments"]
        )
        if env_profiles and not components.get("profiles", _DISABLED).enabled:
            self.fail(path, f"profiles are declared but the 'profiles' component is disabled in environment {env['name']!r}")
        cluster = env["cluster"]
        return Environment(
            name=env["name"],
            stage=env.get("stage", "development"),
            cluster=Cluster(cluster["name"], cluster["provider"], cluster.get("server")),
            domain=env["domain"],
            tls=Tls(tls["mode"], tls.get("acmeEmail"), tls.get("acmeServer"), tls.get("secretName")),
            sizing=Sizing(replicas, bool(sizing.get("highAvailability", False)), sizing.get("resources") or {}),
            registry_mirror=env.get("registryMirror"),
            components=components,
            profiles=env_profiles,
        )


def resolve(document: Document, catalog: Catalog) -> Platform:
    """Validate a loaded spec against the schema and the catalog; return the resolved platform."""
    problems = validate(document, "platform.schema.json")
    if problems or not isinstance(document.data, dict):
        if not isinstance(document.data, dict) and not problems:
            problems = [document.problem((), "expected a mapping at the top of the spec")]
        raise SpecError(problems)
    data = document.data
    resolver = _Resolver(document, catalog)
    release = data["kubeflow"]["version"]
    if release not in catalog.kubernetes_versions:
        resolver.fail(("kubeflow", "version"), f"unsupported Kubeflow release {release!r}; the catalog supports: {', '.join(catalog.releases)}")
    else:
        supported = catalog.kubernetes_versions[release]
        version = data["kubernetes"]["version"]
        if version not in supported:
            resolver.fail(("kubernetes", "version"),
                          f"Kubeflow {release} is not known to run on Kubernetes {version}; supported: {', '.join(supported)}")
    platform_layer = data.get("components") or {}
    resolver.check_component_names(platform_layer, ("components",), release)
    names: dict[str, int] = {}
    for index, env in enumerate(data["environments"]):
        if env["name"] in names:
            first = names[env["name"]]
            resolver.fail(("environments", index, "name"), f"duplicate environment name {env['name']!r} (first at environments[{first}])")
        names.setdefault(env["name"], index)
    profile_names: dict[str, int] = {}
    for index, profile in enumerate(data.get("profiles") or []):
        if profile["name"] in profile_names:
            resolver.fail(("profiles", index, "name"), f"duplicate profile name {profile['name']!r}")
        profile_names.setdefault(profile["name"], index)
        for position, env_name in enumerate(profile.get("environments") or []):
            if env_name not in names:
                resolver.fail(("profiles", index, "environments", position), f"unknown environment {env_name!r}{did_you_mean(env_name, list(names))}")
    default = data.get("defaultEnvironment", data["environments"][0]["name"])
    if default not in names:
        resolver.fail(("defaultEnvironment",), f"unknown environment {default!r}{did_you_mean(default, list(names))}")
    for name, config in platform_layer.items():
        resolver.check_quantities((config or {}).get("resources"), ("components", name, "resources"))
    for index, env in enumerate(data["environments"]):
        resolver.check_quantities((env.get("sizing") or {}).get("resources"), ("environments", index, "sizing", "resources"))
        for name, config in (env.get("components") or {}).items():
            resolver.check_quantities((config or {}).get("resources"), ("environments", index, "components", name, "resources"))
    gitops = _gitops(data.get("gitops") or {"engine": "none"}, resolver)
    # Environments resolve against the release's catalog; without one, their checks would only mislead.
    if release not in catalog.kubernetes_versions:
        raise SpecError(resolver.problems)
    environments = tuple(
        resolver.resolve_environment(index, env, platform_layer, release, data.get("profiles") or [])
        for index, env in enumerate(data["environments"])
    )
    if resolver.problems:
        raise SpecError(resolver.problems)
    return Platform(
        file=document.file,
        name=data["name"],
        kubeflow_version=release,
        kubernetes_version=data["kubernetes"]["version"],
        source_mode=data["sources"]["mode"],
        default_environment=default,
        environments=environments,
        gitops=gitops,
    )


def _gitops(data: dict[str, Any], resolver: _Resolver) -> GitOps:
    engine = data["engine"]
    if engine != "none" and not data.get("repoURL"):
        resolver.fail(("gitops",), f"gitops engine {engine!r} needs repoURL")
    if data.get("sopsSecret") and engine != "flux":
        resolver.fail(("gitops", "sopsSecret"), f"SOPS decryption is a Flux feature; engine is {engine!r}")
    return GitOps(
        engine=engine,
        repo_url=data.get("repoURL"),
        revision=data.get("revision", "main"),
        path=data.get("path", "."),
        namespace=data.get("namespace", "flux-system" if engine == "flux" else "argocd"),
        prune=data.get("prune", True),
        self_heal=data.get("selfHeal", True),
        hydrated=data.get("hydrated", False),
        sops_secret=data.get("sopsSecret"),
    )


def load_platform(path: Path, catalog: Catalog, display: str | None = None) -> Platform:
    return resolve(load_file(path, display or path.name), catalog)
