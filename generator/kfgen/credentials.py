"""Credentials: the Secrets each environment needs, and how its secrets backend provides them.

Upstream ships Secrets with published default values (database passwords, object-store keys, the
OIDC client secret, Dex's example user). Every environment drops those copies and gets the same
Secrets, with the same names and keys, from its backend:

    local           random values written by `kfgen secrets --generate` to an untracked file
    existing        created out of band; `kfgen secrets` lists names and keys
    externalSecret  an ExternalSecret per Secret, reading <keyPrefix>/<credential> from the store
    sops            encrypted Secret files under <path>/<component>/, decrypted by Flux

Keys that hold the same credential (the OIDC client secret is in both Dex's and oauth2-proxy's
Secret) name it alike, so every backend gives them one value. The rendered tree never holds a value.
"""

from __future__ import annotations

import re
import secrets as random_source
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import SecretKey
from .data import PREREQUISITES
from .errors import InputError
from .plan import EnvironmentPlan, Plan
from .spec import Environment
from .yamlio import dump_all, load_all_plain

EXTERNAL_SECRETS_API = "external-secrets.io/v1"
OIDC_CLIENT_ID = "oidc-client/client-id"  # not secret: Dex's client id, or the external issuer's
DEX_CLIENT_ID = "kubeflow-oidc-authservice"
DEX_USERS = "dex-users"  # credential group of static users' password hashes
LOCAL_SECRETS_DIR = ".secrets"  # untracked; listed in .gitignore
PULL_SECRET_TYPE = "kubernetes.io/dockerconfigjson"  # a registry login (imagePullSecret)
PULL_SECRET_KEY = ".dockerconfigjson"


# Operators a backend needs in the cluster, and the file under prerequisites/ with the CRDs they serve.
PREREQUISITES_DIR = PREREQUISITES
BACKEND_PREREQUISITES = {"externalSecret": "external-secrets.yaml"}


def prerequisite_files(environment: Environment) -> list[Path]:
    """The CRD files of the operators the environment's cluster must run first."""
    name = BACKEND_PREREQUISITES.get(environment.secrets.backend)
    return [PREREQUISITES_DIR / name] if name else []


@dataclass(frozen=True)
class RequiredSecret:
    """A Secret one component needs in one environment."""

    component: str
    name: str
    namespace: str
    description: str
    keys: tuple[SecretKey, ...]
    replaces_upstream: bool  # upstream ships a copy with default values, which the overlay removes
    type: str = "Opaque"

    @property
    def generated(self) -> bool:
        """Whether the local backend can make its values: random passwords yes, a registry login no."""
        return self.type == "Opaque"

    def value_keys(self) -> list[SecretKey]:
        """Keys whose value is secret (the backend provides them)."""
        return [k for k in self.keys if k.value is None and k.credential != OIDC_CLIENT_ID]


def env_var_name(prefix: str, name: str) -> str:
    return f"{prefix}_{name.upper().replace('-', '_')}"


def fixed_value(key: SecretKey, environment: Environment) -> str | None:
    """The value of a key that is not secret, else None."""
    if key.value is not None:
        return key.value
    if key.credential == OIDC_CLIENT_ID:
        oidc = environment.identity.oidc
        return oidc.client_id if environment.identity.provider == "oidc" and oidc else DEX_CLIENT_ID
    return None


def _identity_secrets(env_plan: EnvironmentPlan) -> list[RequiredSecret]:
    identity = env_plan.environment.identity
    enabled = {p.name for p in env_plan.components}
    found: list[RequiredSecret] = []
    if "dex" in enabled and identity.provider == "dex":
        if identity.static_users:
            found.append(RequiredSecret(
                "dex", "dex-passwords", "auth", "bcrypt hashes of the passwords of Dex's static users",
                tuple(SecretKey(env_var_name("DEX_HASH", u.username), None, f"{DEX_USERS}/{u.username}") for u in identity.static_users),
                True))
        if identity.connectors:
            found.append(RequiredSecret(
                "dex", "dex-connectors", "auth", "client secrets (or LDAP bind passwords) of Dex's connectors",
                tuple(SecretKey(env_var_name("DEX_CONNECTOR", c.id), None, f"dex-connectors/{c.id}") for c in identity.connectors),
                False))
    return found


def _setting(settings: dict[str, Any], path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _with_settings(keys: tuple[SecretKey, ...], settings: dict[str, Any]) -> tuple[SecretKey, ...]:
    """Keys whose fixed value comes from a setting (an external database's user) take it when it is set."""
    resolved = []
    for key in keys:
        value = _setting(settings, key.setting) if key.setting else None
        resolved.append(SecretKey(key.name, str(value), key.credential) if value is not None else key)
    return tuple(resolved)


def required_secrets(plan: Plan, env_plan: EnvironmentPlan) -> list[RequiredSecret]:
    """Every Secret the environment's enabled components need from its backend, by component order.

    A catalog Secret with a `when:` is needed only where the component's settings make it true (no
    object-store keys where the store is reached through workload identity)."""
    release = plan.platform.kubeflow_version
    found: list[RequiredSecret] = []
    for planned in env_plan.components:
        settings = planned.config.settings
        for secret in planned.component.secrets_in(release):
            if secret.name == "dex-passwords":
                continue  # its keys follow the spec's static users (below)
            if secret.when and not _needed(secret.when, settings, planned.component.file):
                continue
            found.append(RequiredSecret(planned.name, secret.name, secret.namespace, secret.description,
                                        _with_settings(secret.keys, settings), True))
    found.extend(_identity_secrets(env_plan))
    found.extend(_pull_secrets(env_plan, release))
    order = {p.name: i for i, p in enumerate(env_plan.components)}
    return sorted(found, key=lambda s: (order[s.component], s.namespace, s.name))


def _pull_secrets(env_plan: EnvironmentPlan, release: str) -> list[RequiredSecret]:
    """The environment's registry login in every namespace the platform's pods run in, with the first component
    (in install order) that has objects there; the profiles' namespaces with the tenants."""
    name = env_plan.environment.image_pull_secret
    if not name:
        return []
    found: list[RequiredSecret] = []
    covered: set[str] = set()
    for planned in env_plan.components:
        namespaces = planned.component.releases[release].namespaces
        if planned.name == "tenants":
            namespaces = tuple(p.name for p in env_plan.environment.profiles)
        for namespace in namespaces:
            if namespace in covered:
                continue
            covered.add(namespace)
            found.append(RequiredSecret(
                planned.name, name, namespace, "registry login the platform's pods pull their images with (imagePullSecret)",
                (SecretKey(PULL_SECRET_KEY, None, f"image-pull/{name}"),), False, PULL_SECRET_TYPE))
    return found


def _needed(expression: str, settings: dict[str, Any], where: str) -> bool:
    from .templates import evaluate  # Jinja only once a catalog Secret is conditional

    return bool(evaluate(expression, {"settings": settings}, where))


def remote_reference(credential: str, prefix: str) -> tuple[str, str]:
    group, _, field = credential.partition("/")
    return (f"{prefix.rstrip('/')}/{group}" if prefix else group), field or group


def external_secret(secret: RequiredSecret, environment: Environment) -> dict[str, Any]:
    """The ExternalSecret that makes `secret` from the environment's store."""
    backend = environment.secrets
    assert backend.store is not None
    literals = {k.name: value for k in secret.keys if (value := fixed_value(k, environment)) is not None}
    target: dict[str, Any] = {"name": secret.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"}
    if literals:
        target["template"] = {"engineVersion": "v2", "mergePolicy": "Merge", "data": literals}
    if secret.type != "Opaque":
        target["template"] = {"engineVersion": "v2", "type": secret.type, **target.get("template", {})}
    data = []
    for key in secret.value_keys():
        remote_key, remote_property = remote_reference(key.credential, backend.key_prefix)
        data.append({"secretKey": key.name, "remoteRef": {"key": remote_key, "property": remote_property}})
    return {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": {"name": secret.name, "namespace": secret.namespace,
                     "labels": {"app.kubernetes.io/part-of": "kubeflow", "app.kubernetes.io/component": secret.component}},
        "spec": {"refreshInterval": backend.refresh_interval,
                 "secretStoreRef": {"kind": backend.store.kind, "name": backend.store.name},
                 "target": target, "data": data},
    }


# -- the local backend --------------------------------------------------------------------------

_ALPHABET = string.ascii_letters + string.digits


def _random_value() -> str:
    return "".join(random_source.choice(_ALPHABET) for _ in range(32))


def local_secrets_file(root: Path, env_name: str) -> Path:
    return root / LOCAL_SECRETS_DIR / f"{env_name}.yaml"


def _bcrypt(password: str) -> str:
    import bcrypt  # only the local backend hashes passwords

    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12)).decode()


def _stored_values(path: Path) -> dict[str, str]:
    """Credential values from an existing local file, by credential, so that regenerating keeps them."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for document in load_all_plain(path.read_text(encoding="utf-8")):
        if isinstance(document, dict) and document.get("kind") == "Secret":
            credentials = ((document.get("metadata") or {}).get("annotations") or {}).get("kfgen.dev/credentials", "")
            data = document.get("stringData") or {}
            for pair in credentials.split(","):
                key, _, credential = pair.partition("=")
                if key in data:
                    values[credential] = str(data[key])
    logins = path.with_suffix(".logins")
    if logins.is_file():
        for line in logins.read_text(encoding="utf-8").splitlines():
            user, _, password = line.partition(" ")
            values[f"{DEX_USERS}/{user}#password"] = password
    return values


def generate_local_secrets(plan: Plan, env_plan: EnvironmentPlan, root: Path) -> tuple[Path, list[str]]:
    """Write the environment's Secrets with random values to its untracked file; keep values already there.

    Returns the file and the static users' logins (user and password) for the person running it.
    """
    environment = env_plan.environment
    if environment.secrets.backend != "local":
        raise InputError(f"environment {environment.name!r} uses secrets backend {environment.secrets.backend!r}; "
                         "only backend 'local' generates values")
    path = local_secrets_file(root, environment.name)
    stored = _stored_values(path)
    values: dict[str, str] = {}
    logins: dict[str, str] = {}

    def value_of(credential: str) -> str:
        if credential not in values:
            if credential.startswith(f"{DEX_USERS}/"):
                user = credential.split("/", 1)[1]
                password = stored.get(f"{credential}#password") or _random_value()
                logins[user] = password
                values[credential] = stored.get(credential) or _bcrypt(password)
            else:
                values[credential] = stored.get(credential) or _random_value()
        return values[credential]

    documents: list[dict[str, Any]] = []
    generated = [secret for secret in required_secrets(plan, env_plan) if secret.generated]
    for secret in generated:
        data: dict[str, str] = {}
        for key in secret.keys:
            fixed = fixed_value(key, environment)
            data[key.name] = fixed if fixed is not None else value_of(key.credential)
        documents.append({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret.name, "namespace": secret.namespace,
                         "labels": {"app.kubernetes.io/part-of": "kubeflow", "app.kubernetes.io/component": secret.component},
                         "annotations": {"kfgen.dev/credentials": ",".join(f"{k.name}={k.credential}" for k in secret.value_keys())}},
            "stringData": data,
        })
    # The Secrets go to the cluster before the platform that creates their namespaces (a GitOps
    # bootstrap applies this file first), so the namespaces come with them; the platform adopts them.
    namespaces = sorted({secret.namespace for secret in generated})
    documents[:0] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in namespaces]
    users = {u.username: u.email for u in environment.identity.static_users}
    header = f"# Credentials of environment {environment.name}, generated by `kfgen secrets --generate`. Never commit this file.\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / ".gitignore").write_text("*\n", encoding="utf-8")
    # The static users' passwords (only their hashes go to the cluster), so that a later run can print them again.
    _write_private(path.with_suffix(".logins"), "".join(f"{name} {password}\n" for name, password in sorted(logins.items())))
    _write_private(path, header + dump_all(documents))
    return path, [f"{users[name]} / {password}" for name, password in sorted(logins.items())]


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o600)
    temporary.replace(path)


# -- the sops backend ---------------------------------------------------------------------------

_ENCRYPTED = re.compile(r"^ENC\[[A-Z0-9_]+,data:.*\]$", re.DOTALL)


def verify_sops_folder(plan: Plan, env_plan: EnvironmentPlan, root: Path) -> list[str]:
    """Problems with the environment's SOPS folder: a missing Secret or key, or a value not encrypted."""
    environment = env_plan.environment
    if environment.secrets.backend != "sops" or environment.secrets.path is None:
        return []
    problems: list[str] = []
    base = root / environment.secrets.path
    for secret in required_secrets(plan, env_plan):
        folder = base / secret.component
        found: dict[str, Any] | None = None
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            for document in load_all_plain(path.read_text(encoding="utf-8")):
                metadata = document.get("metadata") if isinstance(document, dict) else None
                if document.get("kind") == "Secret" and isinstance(metadata, dict) and metadata.get("name") == secret.name:
                    found = document
        where = f"{environment.secrets.path}/{secret.component}/"
        if found is None:
            problems.append(f"{where}: no Secret {secret.namespace}/{secret.name} (keys {', '.join(k.name for k in secret.keys)})")
            continue
        if not isinstance(found.get("sops"), dict):
            problems.append(f"{where}: Secret {secret.name} is not SOPS-encrypted (no sops metadata)")
        values = {**(found.get("data") or {}), **(found.get("stringData") or {})}
        for key in secret.keys:
            if key.name not in values:
                problems.append(f"{where}: Secret {secret.name} lacks key {key.name}")
            elif fixed_value(key, environment) is None and not _ENCRYPTED.match(str(values[key.name])):
                problems.append(f"{where}: Secret {secret.name} key {key.name} is in plain text; encrypt it with sops")
    return problems


def value_source(secret: RequiredSecret, key: SecretKey, environment: Environment, root: Path) -> str:
    """Where the value of one key of a Secret the environment needs comes from, in words (`kfgen secrets`)."""
    backend = environment.secrets
    fixed = fixed_value(key, environment)
    if fixed is not None:
        return f"fixed value {fixed!r}"
    if backend.backend == "externalSecret" and backend.store is not None:
        remote_key, remote_property = remote_reference(key.credential, backend.key_prefix)
        return f"{backend.store.kind}/{backend.store.name}: key {remote_key}, property {remote_property}"
    if backend.backend == "local" and not secret.generated:
        return "a registry login: create it before applying (kubectl create secret docker-registry)"
    if backend.backend == "local":
        return f"random, in {local_secrets_file(root, environment.name).relative_to(root)}"
    if backend.backend == "sops":
        return f"encrypted, in {backend.path}/{secret.component}/"
    return "create it before applying"


def local_secrets_by_component(plan: Plan, env_plan: EnvironmentPlan, root: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The local backend's Secrets, generated once into .secrets/ (untracked), by the component they are applied with,
    and the static users' logins."""
    path, logins = generate_local_secrets(plan, env_plan, root)
    by_component: dict[str, list[dict[str, Any]]] = {}
    for secret in load_all_plain(path.read_text(encoding="utf-8")):
        if secret.get("kind") != "Secret":  # its namespaces, for a GitOps bootstrap; here each component brings its own
            continue
        component = secret["metadata"]["labels"]["app.kubernetes.io/component"]
        secret["metadata"].pop("annotations", None)  # which credential each key holds: for reading the file back, not for the cluster
        by_component.setdefault(component, []).append(secret)
    return by_component, logins
