"""Resolving the spec: each environment's configuration from the validated platform.yaml and the catalog.

Values resolve as catalog defaults <- platform-wide `components:` <- the environment's `components:`,
by deep merge (mappings merge, everything else replaces), and the resolved settings are validated
again against each component's settings schema. The rules that span fields (dependencies enabled,
TLS and secrets backends complete, names unique, deploy branches valid) are checked on the way, and
every broken one is reported at once, located in the spec.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

from .catalog import Catalog, Component
from .errors import Problem, SpecError
from .notebooks import COMPONENT as NOTEBOOKS
from .notebooks import setting_problems as spawner_problems
from .schemas import did_you_mean, validate_with
from .sizing import replica_problem
from .spec import (
    ENV_PLACEHOLDER,
    Cluster,
    ComponentConfig,
    Connector,
    Environment,
    ExternalOidc,
    GitOps,
    Grant,
    Identity,
    Platform,
    Profile,
    Scheduling,
    Secrets,
    SecretStore,
    Sizing,
    StaticUser,
    Tls,
    TopologySpread,
    validated,
)
from .yamlio import Document, format_path

_DISABLED = ComponentConfig(False, None, {}, (), {})
# Folders kfgen writes or fills: a customization kept there would be overwritten or never committed.
GENERATED_FOLDERS = ("base", "overlays", "gitops", "vendor", "rendered", "build", ".kfgen", ".secrets", "components")
# The fields of each ACME DNS-01 provider, and those it needs.
DNS01_FIELDS = {"region": ("route53",), "hostedZoneID": ("route53",), "role": ("route53",), "project": ("cloudDNS",),
                "subscriptionID": ("azureDNS",), "resourceGroupName": ("azureDNS",), "hostedZoneName": ("azureDNS",),
                "managedIdentityClientID": ("azureDNS",)}
DNS01_REQUIRED = {"route53": ("region",), "cloudDNS": ("project",), "azureDNS": ("subscriptionID", "resourceGroupName")}
# Connector configuration fields that hold secrets: never in the spec.
SECRET_FIELDS = {"clientSecret", "bindPW", "password", "secret", "privateKey", "token", "hash", "passwordHash"}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def scheduling(data: dict[str, Any] | None) -> Scheduling:
    """The typed form of a validated `scheduling` mapping."""
    if not data:
        return Scheduling()
    spread = data.get("topologySpread")
    return Scheduling(
        node_selector=dict(data.get("nodeSelector") or {}),
        tolerations=tuple(data["tolerations"]) if "tolerations" in data else None,
        affinity=dict(data.get("affinity") or {}),
        topology_spread=TopologySpread(spread.get("topologyKey", "topology.kubernetes.io/zone"), spread.get("maxSkew", 1),
                                       spread.get("whenUnsatisfiable", "ScheduleAnyway")) if spread is not None else None,
        priority_class_name=data.get("priorityClassName"),
    )


def customization_problem(folder: str, root: Path | None) -> str | None:
    """Why folder (relative to the project root) cannot be a customization, or None."""
    parts = folder.split("/")
    if any(part in (".", "..") for part in parts):
        return "write the folder's path inside the project, without '.' or '..' parts"
    if parts[0] in GENERATED_FOLDERS:
        return f"{parts[0]}/ is kfgen's own (generated or fetched); keep customizations in a folder of yours, such as customizations/"
    if root is None:
        return None
    directory = root / folder
    if not directory.is_dir():
        return "no such folder in the project"
    found = [directory / name for name in ("kustomization.yaml", "kustomization.yml", "Kustomization") if (directory / name).is_file()]
    if not found:
        return "the folder has no kustomization.yaml (a kustomize Component: kind Component)"
    from .yamlio import load_file  # only specs with customizations read them

    kind = (load_file(found[0], f"{folder}/{found[0].name}").data or {}).get("kind")
    if kind != "Component":
        return (f"its {found[0].name} is of kind {kind!r}; a customization is a kustomize Component "
                "(apiVersion kustomize.config.k8s.io/v1alpha1, kind Component)")
    return None


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; any other value replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


class _Resolver:
    def __init__(self, document: Document, catalog: Catalog, root: Path | None = None):
        self.document = document
        self.catalog = catalog
        self.root = root  # the project folder, where customizations are looked up; None: not looked up
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
        # Layers are partial, so check them without `required` nor the rules across settings (a
        # top-level allOf); the merged result is checked whole.
        partial = {key: value for key, value in schema.items() if key not in ("required", "allOf")}
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
                    other = components.get(dependency, _DISABLED)
                    if not (other.enabled or other.provided):
                        needed_by.setdefault(dependency, []).append(name)
        self._check_requirements(path, env_name, components, platform_layer, env_layer)
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
                                       f"depend{'s' if len(dependents) == 1 else ''} on it (if the cluster runs it already, "
                                       "write provided: true instead)")
                continue
            for name in dependents:
                where = path + ("components", name) if name in env_layer else ("components", name) if name in platform_layer else path
                self.fail(where, f"{name!r} depends on {dependency!r}, which is disabled in environment {env_name!r} "
                                 "(off by default; enable it)")

    def _check_requirements(self, path: tuple[Any, ...], env_name: str, components: dict[str, ComponentConfig],
                            platform_layer: dict[str, Any], env_layer: dict[str, Any]) -> None:
        """A setting that needs another component (KServe's Serverless mode, Knative) finds it enabled or provided;
        the error points at the setting where the spec wrote it, else at the component."""
        for name, config in sorted(components.items()):
            if not config.enabled:
                continue
            for requirement in self.catalog.components[name].requires:
                other = components.get(requirement.component, _DISABLED)
                if not requirement.applies(config.settings) or other.enabled or other.provided:
                    continue
                layers = ((path + ("components", name), env_layer.get(name)), (("components", name), platform_layer.get(name)))
                written = [where + ("settings", requirement.setting) for where, layer in layers
                           if requirement.setting in ((layer or {}).get("settings") or {})]
                needed = requirement.component
                layers = ((path + ("components", needed), env_layer.get(needed)), (("components", needed), platform_layer.get(needed)))
                disabled = [where + ("enabled",) for where, layer in layers if "enabled" in (layer or {})]
                where = (written or disabled or [path + ("components", name)])[0]
                value = config.settings.get(requirement.setting)
                having, instead = ((f"{requirement.setting} set", f"leave {requirement.setting} empty") if requirement.values is None
                                   else (f"{requirement.setting} {value!r}", f"choose another {requirement.setting}"))
                self.fail(where, f"{name!r} with {having} needs {requirement.component!r} ({requirement.reason}), "
                                 f"which is disabled in environment {env_name!r}: enable it, mark it provided, or {instead}")

    def _check_replicas(self, component: Component, release: str, replicas: int | None, path: tuple[Any, ...], name: str,
                        platform_layer: dict[str, Any], env_layer: dict[str, Any]) -> None:
        """Explicit replicas above one are refused for a component with a Deployment that must run one."""
        problem = replica_problem(component, release, replicas)
        if problem:
            written = "replicas" in (env_layer.get(name) or {})
            self.fail((path + ("components", name, "replicas")) if written else ("components", name, "replicas"), problem)

    def _variant(self, component: Component, release: str, provider: str, settings: dict[str, Any],
                 path: tuple[Any, ...]) -> str | None:
        """The variant the environment's provider and settings choose, chosen once here (plans read it from the
        loaded spec); and the settings it needs, which have no default."""
        from .variants import chosen_variant, missing_settings

        variant = chosen_variant(component, release, provider, settings)
        for setting, message in missing_settings(component, variant, provider, settings):
            # Located at the cluster's provider, which is what makes the setting required.
            line, column = self.document.locate(path + ("cluster", "provider"))
            self.problems.append(Problem(self.document.file, line, column,
                                         format_path(path + ("components", component.name, "settings", setting)), message))
        return variant.name if variant else None


    def check_quantities(self, resources: Any, path: tuple[Any, ...]) -> None:
        # The schema allows integer quantities; a negative one would only fail in the cluster.
        for section in ("requests", "limits"):
            for key, value in ((resources or {}).get(section) or {}).items():
                if isinstance(value, int) and value < 0:
                    self.fail(path + (section, key), f"{value} is not a Kubernetes quantity: quantities cannot be negative")

    def resolve_environment(self, index: int, env: dict[str, Any], platform: dict[str, Any], release: str) -> Environment:
        path = ("environments", index)
        platform_layer = platform.get("components") or {}
        profiles = platform.get("profiles") or []
        env_layer = env.get("components") or {}
        self.check_component_names(env_layer, path + ("components",), release)
        components: dict[str, ComponentConfig] = {}
        for name, component in sorted(self.catalog.components.items()):
            if release not in component.releases:
                continue
            merged: dict[str, Any] = {"enabled": component.enabled_by_default, "settings": component.defaults()}
            for layer in (platform_layer.get(name), env_layer.get(name)):
                if layer:
                    merged = deep_merge(merged, layer)
            where = path + ("components", name) if name in env_layer else ("components", name)
            provided = bool(merged.get("provided", False))
            provided_at = None
            if provided:
                written = path + ("components", name) if "provided" in (env_layer.get(name) or {}) else ("components", name)
                provided_at = self.document.problem(written + ("provided",), "")
                explicit = [p for p, layer in ((("components", name), platform_layer.get(name)), (path + ("components", name), env_layer.get(name)))
                            if (layer or {}).get("enabled") is True]
                for at in explicit:
                    self.fail(at + ("enabled",), f"{name!r} is provided by the cluster in environment {env['name']!r}, so kfgen does "
                                                 "not install it: remove enabled: true, or provided: true")
                merged["enabled"] = False
            for index, folder in enumerate(merged.get("customizations") or ()):
                unusable = customization_problem(folder, self.root)
                if unusable:
                    self.fail(where + ("customizations", index), f"{folder!r}: {unusable}")
            components[name] = ComponentConfig(
                enabled=merged["enabled"],
                replicas=merged.get("replicas"),
                resources=merged.get("resources") or {},
                images=tuple(merged.get("images") or ()),
                settings=merged["settings"],
                scheduling=scheduling(merged.get("scheduling")),
                customizations=tuple(merged.get("customizations") or ()),
                provided=provided,
                provided_at=provided_at,
            )
            if merged["enabled"]:
                self._check_replicas(component, release, merged.get("replicas"), path, name, platform_layer, env_layer)
                invalid = validate_with(self.document, component.settings_schema, merged["settings"], where + ("settings",))
                self.problems.extend(invalid)
                if not invalid:  # a variant's `when` reads the settings
                    variant = self._variant(component, release, env["cluster"]["provider"], merged["settings"], path)
                    components[name] = replace(components[name], variant=variant)
                if not invalid and name == NOTEBOOKS:
                    for subpath, message in spawner_problems(merged["settings"]):
                        self.fail(where + ("settings",) + subpath, message)
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
        self.check_issuers(path + ("tls",), tls)
        cert_manager = components.get("cert-manager", _DISABLED)
        if tls["mode"] in ("self-signed", "acme", "clusterIssuer") and not (cert_manager.enabled or cert_manager.provided):
            self.fail(path + ("tls", "mode"), f"tls mode {tls['mode']!r} needs the cert-manager component enabled (or provided)")
        elif tls["mode"] == "self-signed" and cert_manager.provided:
            self.fail(path + ("tls", "mode"), "tls mode 'self-signed' signs with the kubeflow-self-signing-issuer ClusterIssuer that the "
                                              "cert-manager component installs, and this environment's cert-manager is provided: use "
                                              "mode 'clusterIssuer' with the name of an issuer your cluster has")
        sizing = env.get("sizing") or {}
        replicas = sizing.get("replicas", 1)
        if sizing.get("highAvailability") and replicas < 2:
            self.fail(path + ("sizing", "highAvailability"), f"high availability needs sizing.replicas of at least 2, found {replicas}")
        env_profiles = self.profiles(path, env, profiles)
        self.check_profile_identities(path, env, profiles, env_profiles, components)
        if env_profiles and not components.get("profiles", _DISABLED).enabled:
            self.fail(path, f"profiles are declared but the 'profiles' component is disabled in environment {env['name']!r}")
        secrets = self.secrets(path, env, platform)
        identity = self.identity(path, env, platform, components)
        cluster = env["cluster"]
        return Environment(
            name=env["name"],
            stage=env.get("stage", "development"),
            cluster=Cluster(cluster["name"], cluster["provider"], cluster.get("server")),
            domain=env["domain"],
            tls=Tls(tls["mode"], tls.get("acmeEmail"), tls.get("acmeServer"), tls.get("secretName"), tls.get("clusterIssuer"),
                    dict(tls["dns01"]) if "dns01" in tls else None),
            sizing=Sizing(replicas, bool(sizing.get("highAvailability", False)), sizing.get("resources") or {}),
            registry_mirror=env.get("registryMirror"),
            components=components,
            profiles=env_profiles,
            secrets=secrets,
            identity=identity,
            scheduling=scheduling(env.get("scheduling")),
            trusted_cas=env.get("trustedCAs"),
            image_pull_secret=env.get("imagePullSecret"),
        )

    def check_issuers(self, path: tuple[Any, ...], tls: dict[str, Any]) -> None:
        """An existing ClusterIssuer is named in its mode only; a DNS-01 solver has its provider's fields only."""
        if tls["mode"] == "clusterIssuer" and not tls.get("clusterIssuer"):
            self.fail(path, "tls mode 'clusterIssuer' needs clusterIssuer (the name of the cluster's ClusterIssuer)")
        if "clusterIssuer" in tls and tls["mode"] != "clusterIssuer":
            self.fail(path + ("clusterIssuer",), f"clusterIssuer applies only to tls mode 'clusterIssuer', not {tls['mode']!r}")
        dns01 = tls.get("dns01")
        if dns01 is None:
            return
        if tls["mode"] != "acme":
            self.fail(path + ("dns01",), f"dns01 answers ACME challenges: it applies only to tls mode 'acme', not {tls['mode']!r}")
        provider = dns01["provider"]
        for key in sorted(dns01):
            if key != "provider" and provider not in DNS01_FIELDS[key]:
                self.fail(path + ("dns01", key), f"{key} applies only to provider {' or '.join(DNS01_FIELDS[key])}, not {provider!r}")
        for key in DNS01_REQUIRED[provider]:
            if key not in dns01:
                self.fail(path + ("dns01",), f"provider {provider!r} needs {key}")

    def profiles(self, path: tuple[Any, ...], env: dict[str, Any], profiles: list[dict[str, Any]]) -> tuple[Profile, ...]:
        """The platform's profiles present in this environment, with the environment's changes applied."""
        merged = {p["name"]: dict(p) for p in profiles if not p.get("environments") or env["name"] in p["environments"]}
        for index, change in enumerate(env.get("profiles") or []):
            if change["name"] in merged:
                merged[change["name"]].update(change)
            elif "owner" not in change:
                known = sorted(merged)
                self.fail(path + ("profiles", index, "name"), f"profile {change['name']!r} is not a platform profile in this environment"
                                                              f"{did_you_mean(change['name'], known)}; a new one needs an owner")
            else:
                merged[change["name"]] = dict(change)
        owners = {p["name"]: p["owner"] for p in profiles}
        for index, profile in enumerate(env.get("profiles") or []):
            self.check_grants(profile.get("contributors") or [], path + ("profiles", index, "contributors"),
                              profile.get("owner") or owners.get(profile["name"], ""))
        result = []
        for name, p in sorted(merged.items()):
            grants = tuple(Grant(g["role"], g.get("user"), g.get("group")) for g in p.get("contributors") or ())
            result.append(Profile(name, p["owner"], grants, dict(p.get("quota") or {}), dict(p.get("objectStoreIdentity") or {})))
        return tuple(result)

    def check_profile_identities(self, path: tuple[Any, ...], env: dict[str, Any], profiles: list[dict[str, Any]],
                                 env_profiles: tuple[Profile, ...], components: dict[str, ComponentConfig]) -> None:
        """A profile's own object-store identity replaces the environment's, so it needs one of the same kind."""
        pipelines = components.get("pipelines", _DISABLED)
        store = (pipelines.settings.get("objectStore") or {}) if pipelines.enabled else {}
        shared = store.get("identity") if store.get("type") == "external" else None
        changed = {change["name"]: index for index, change in enumerate(env.get("profiles") or []) if "objectStoreIdentity" in change}
        declared = {p["name"]: index for index, p in enumerate(profiles)}
        for profile in (p for p in env_profiles if p.object_store_identity):
            where = (path + ("profiles", changed[profile.name]) if profile.name in changed
                     else ("profiles", declared[profile.name])) + ("objectStoreIdentity",)
            kind = next(iter(profile.object_store_identity))
            if not shared:
                self.fail(where, f"environment {env['name']!r} reaches the Pipelines object store without a cloud identity "
                                 "(components.pipelines.settings.objectStore.identity): a profile's identity replaces that one")
            elif kind not in shared:
                self.fail(where, f"environment {env['name']!r} reaches the Pipelines object store with {next(iter(shared))}: a "
                                 f"profile's identity replaces that one, so it gives {next(iter(shared))} too, not {kind}")

    def check_grants(self, grants: list[dict[str, Any]], path: tuple[Any, ...], owner: str) -> None:
        seen: set[str] = set()
        for index, grant in enumerate(grants):
            if ("user" in grant) == ("group" in grant):
                self.fail(path + (index,), "a contributor is either a user or a group: give exactly one of them")
                continue
            subject = grant.get("user") or grant["group"]
            if subject in seen:
                self.fail(path + (index,), f"{subject} has a role in this profile already; give each user or group one role")
            elif grant.get("user") == owner:
                self.fail(path + (index, "user"), f"{owner} owns this profile and needs no contributor role")
            seen.add(subject)

    def secrets(self, path: tuple[Any, ...], env: dict[str, Any], platform: dict[str, Any]) -> Secrets:
        data = env.get("secrets") or platform.get("secrets")
        where = path + ("secrets",) if env.get("secrets") else ("secrets",)
        stage = env.get("stage", "development")
        if data is None:
            # Without a word from the spec: random values on a laptop, else Secrets someone creates; never defaults.
            return Secrets("local" if stage == "local" else "existing")
        backend = data["backend"]
        if backend == "local" and stage != "local":
            self.fail(where + ("backend",), f"backend 'local' keeps generated credentials on one machine; environment {env['name']!r} "
                                            f"has stage {stage!r}, and only stage 'local' may use it")
        if backend == "externalSecret" and "store" not in data:
            self.fail(where, "backend 'externalSecret' needs store (the SecretStore or ClusterSecretStore to read)")
        if backend == "sops":
            if "path" not in data:
                self.fail(where, "backend 'sops' needs path (the folder of encrypted Secrets)")
            if (platform.get("gitops") or {}).get("engine") != "flux":
                self.fail(where + ("backend",), "backend 'sops' is decrypted by Flux; set gitops.engine to flux")
        for key, backends in (("store", ("externalSecret",)), ("keyPrefix", ("externalSecret",)),
                              ("refreshInterval", ("externalSecret",)), ("path", ("sops",))):
            if key in data and backend not in backends:
                self.fail(where + (key,), f"{key} applies only to backend {' or '.join(backends)}, not {backend!r}")
        store = data.get("store")
        return Secrets(backend, SecretStore(store.get("kind", "ClusterSecretStore"), store["name"]) if store else None,
                       data.get("keyPrefix", ""), data.get("refreshInterval", "1h"), data.get("path"))

    def identity(self, path: tuple[Any, ...], env: dict[str, Any], platform: dict[str, Any],
                 components: dict[str, ComponentConfig]) -> Identity:
        data = env.get("identity") or platform.get("identity") or {}
        where = path + ("identity",) if env.get("identity") else ("identity",)
        provider = data.get("provider", "dex")
        if provider == "oidc":
            if "oidc" not in data:
                self.fail(where, "provider 'oidc' needs oidc (the issuer oauth2-proxy uses)")
            for key in ("connectors", "staticUsers"):
                if key in data:
                    self.fail(where + (key,), f"{key} configure Dex, which provider 'oidc' does not deploy")
            if components.get("dex", _DISABLED).enabled:
                self.fail(where + ("provider",), "provider 'oidc' replaces Dex: disable the dex component in this environment")
        else:
            if "oidc" in data:
                self.fail(where + ("oidc",), "oidc applies only to provider 'oidc'")
            if not components.get("dex", _DISABLED).enabled and components.get("oauth2-proxy", _DISABLED).enabled:
                self.fail(where, "provider 'dex' needs the dex component enabled (or use provider 'oidc')")

        for key, field_name in (("connectors", "id"), ("staticUsers", "username")):
            seen: set[str] = set()
            for index, item in enumerate(data.get(key) or ()):
                if item[field_name] in seen:
                    self.fail(where + (key, index, field_name), f"duplicate {field_name} {item[field_name]!r}")
                seen.add(item[field_name])
        for index, connector in enumerate(data.get("connectors") or ()):
            for key in sorted(set(connector.get("config") or {}) & SECRET_FIELDS):
                self.fail(where + ("connectors", index, "config", key),
                          f"{key} would put a secret in the spec; Dex reads it from the dex-connectors Secret, key "
                          f"DEX_CONNECTOR_{connector['id'].upper().replace('-', '_')} (see `kfgen secrets`)")
        oidc = data.get("oidc")
        return Identity(
            provider,
            tuple(Connector(c["id"], c["type"], c["name"], dict(c.get("config") or {})) for c in data.get("connectors") or ()),
            tuple(StaticUser(u["email"], u["username"]) for u in data.get("staticUsers") or ()),
            ExternalOidc(oidc["issuer"], oidc["clientID"], oidc.get("groupsClaim", "groups"), oidc.get("usernameClaim", "email")) if oidc else None,
        )


def resolve(document: Document, catalog: Catalog, root: Path | None = None) -> Platform:
    """Validate a loaded spec against the schema and the catalog; return the resolved platform. root is
    the project folder, where the customizations the spec names must be (None: not looked for)."""
    data = validated(document)
    resolver = _Resolver(document, catalog, root)
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
        resolver.check_grants(profile.get("contributors") or [], ("profiles", index, "contributors"), profile["owner"])
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
    gitops = _gitops(data.get("gitops") or {"engine": "none"}, data["sources"], list(names), resolver)
    # Environments resolve against the release's catalog; without one, their checks would only mislead.
    if release not in catalog.kubernetes_versions:
        raise SpecError(resolver.problems)
    environments = tuple(
        resolver.resolve_environment(index, env, data, release)
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
        manifests_url=data["sources"].get("manifestsURL"),
    )


def branch_name_problem(name: str) -> str | None:
    """Why name cannot be a git branch (the rules of `git check-ref-format --branch`), or None."""
    if name.startswith("-"):
        return "it starts with '-'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it has an empty path component"
    if ".." in name or "@{" in name:
        return f"it contains {'..' if '..' in name else '@{'!r}"
    if name.endswith("."):
        return "it ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return f"component {part!r} starts with '.'"
        if part.endswith(".lock"):
            return f"component {part!r} ends with '.lock'"
    if name == "@":
        return "'@' alone is not a branch name"
    return None


def _gitops(data: dict[str, Any], sources: dict[str, Any], environments: list[str], resolver: _Resolver) -> GitOps:
    engine = data["engine"]
    if engine != "none" and not data.get("repoURL"):
        resolver.fail(("gitops",), f"gitops engine {engine!r} needs repoURL")
    if data.get("sopsSecret") and engine != "flux":
        resolver.fail(("gitops", "sopsSecret"), f"SOPS decryption is a Flux feature; engine is {engine!r}")
    revision = data.get("revision", "main")
    template = data.get("deployBranch", "deploy/{env}")
    sync_from = data.get("syncFrom", "deployBranch")
    mode = sources["mode"]
    if ENV_PLACEHOLDER not in template:
        resolver.fail(("gitops", "deployBranch"), f"{template!r} has no {ENV_PLACEHOLDER}: each environment is published to a branch "
                                                  f"of its own, so write where its name goes (such as 'deploy/{ENV_PLACEHOLDER}')")
    elif "{" in template.replace(ENV_PLACEHOLDER, "") or "}" in template.replace(ENV_PLACEHOLDER, ""):
        resolver.fail(("gitops", "deployBranch"), f"{template!r}: only {ENV_PLACEHOLDER} may stand in braces")
    else:
        for env in environments:
            branch = template.replace(ENV_PLACEHOLDER, env)
            problem = branch_name_problem(branch)
            if problem:
                resolver.fail(("gitops", "deployBranch"), f"gives {branch!r} for environment {env!r}, which is not a git branch name: {problem}")
                break
            if branch == revision:
                resolver.fail(("gitops", "deployBranch"), f"gives {branch!r} for environment {env!r}, the revision branch itself; "
                                                          "`kfgen publish` would overwrite it: choose a deploy branch apart from revision")
                break
    # The controllers read git alone: what they build must be committed on the branch they follow.
    if sync_from == "revision" and mode == "vendored":
        resolver.fail(("gitops", "syncFrom"), "syncFrom 'revision' has the controllers build the revision branch, where vendor/ is not "
                                              "committed, so sources.mode 'vendored' cannot sync from it: use syncFrom 'deployBranch' "
                                              "and `kfgen publish`, or sources.mode 'remote'")
    if sync_from == "revision" and data.get("hydrated", False):
        resolver.fail(("gitops", "syncFrom"), "syncFrom 'revision' has the controllers read the revision branch, where rendered/ is not "
                                              "committed, so hydrated cannot sync from it: use syncFrom 'deployBranch' and `kfgen publish`, "
                                              "or hydrated false with sources.mode 'remote'")
    if "manifestsURL" in sources and mode != "remote":
        resolver.fail(("sources", "manifestsURL"), f"manifestsURL applies only to sources.mode 'remote', not {mode!r}: vendored bases read "
                                                   "vendor/, which `kfgen vendor` fills from the source caches")
    return GitOps(
        engine=engine,
        repo_url=data.get("repoURL"),
        revision=revision,
        path=data.get("path", "."),
        namespace=data.get("namespace", "flux-system" if engine == "flux" else "argocd"),
        prune=data.get("prune", True),
        self_heal=data.get("selfHeal", True),
        hydrated=data.get("hydrated", False),
        sops_secret=data.get("sopsSecret"),
        deploy_branch=template,
        sync_from=sync_from,
    )
