"""Identity: Dex's configuration and oauth2-proxy's, from the spec's `identity`.

With provider dex, Dex serves the spec's connectors and static users (no example user); secrets reach
its configuration only as `$VARIABLE` references that Dex expands from the Secrets mounted as
environment (dex-connectors, dex-passwords). With provider oidc, oauth2-proxy and Istio trust the
external issuer directly and Dex is not deployed.
"""

from __future__ import annotations

import uuid
from typing import Any

from .credentials import env_var_name
from .spec import Environment
from .yamlio import Manifest, dump

DEX_ISSUER = "http://dex.auth.svc.cluster.local:5556/dex"
# The connector field that carries each connector type's secret.
CONNECTOR_SECRET_FIELD = {"oidc": "clientSecret", "github": "clientSecret", "gitlab": "clientSecret",
                          "google": "clientSecret", "microsoft": "clientSecret", "ldap": "bindPW"}
REDIRECTING_TYPES = {"oidc", "github", "gitlab", "google", "microsoft"}


def dex_config(environment: Environment) -> str:
    """Dex's config.yaml for the environment."""
    identity = environment.identity
    connectors = []
    for connector in identity.connectors:
        config: dict[str, Any] = dict(connector.config)
        config[CONNECTOR_SECRET_FIELD[connector.type]] = "$" + env_var_name("DEX_CONNECTOR", connector.id)
        if connector.type in REDIRECTING_TYPES:
            config.setdefault("redirectURI", f"https://{environment.domain}/dex/callback")
        connectors.append({"type": connector.type, "id": connector.id, "name": connector.name, "config": config})
    document: Manifest = {
        "issuer": DEX_ISSUER,
        "storage": {"type": "kubernetes", "config": {"inCluster": True}},
        "web": {"http": "0.0.0.0:5556"},
        "logger": {"level": "info", "format": "json"},
        "oauth2": {"skipApprovalScreen": True},
        "enablePasswordDB": bool(identity.static_users),
        "staticClients": [{"idEnv": "OIDC_CLIENT_ID", "secretEnv": "OIDC_CLIENT_SECRET", "name": "Kubeflow",
                           "redirectURIs": ["/oauth2/callback"]}],
    }
    if identity.static_users:
        document["staticPasswords"] = [
            {"email": user.email, "username": user.username, "hashFromEnv": env_var_name("DEX_HASH", user.username),
             "userID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailto:{user.email}"))}
            for user in identity.static_users
        ]
    if connectors:
        document["connectors"] = connectors
    return dump(document)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def oauth2_proxy_config(environment: Environment) -> str:
    """oauth2-proxy's configuration file when it trusts an external OIDC issuer (provider oidc)."""
    oidc = environment.identity.oidc
    assert oidc is not None
    settings: list[tuple[str, Any]] = [
        ("provider", "oidc"),
        ("oidc_issuer_url", oidc.issuer),
        ("scope", "openid profile email groups"),
        ("email_domains", ["*"]),
        ("upstreams", ["static://200"]),
        ("api_routes", ["/api/", "/apis/", "^/ml_metadata"]),
        ("oidc_email_claim", oidc.username_claim),
        ("oidc_groups_claim", oidc.groups_claim),
        ("skip_provider_button", False),
        ("set_authorization_header", True),
        ("set_xauthrequest", True),
        ("cookie_name", "oauth2_proxy_kubeflow"),
        ("cookie_expire", "24h"),
        ("cookie_refresh", 0),
        ("code_challenge_method", "S256"),
        ("redirect_url", "/oauth2/callback"),
        ("relative_redirect_url", True),
    ]
    return "".join(f"{key} = {_toml(value)}\n" for key, value in settings)


def identity_context(environment: Environment) -> dict[str, Any]:
    """What the dex and oauth2-proxy templates see."""
    identity = environment.identity
    context: dict[str, Any] = {
        "provider": identity.provider,
        "connectors": [{"id": c.id, "type": c.type} for c in identity.connectors],
        "staticUsers": [{"email": u.email, "username": u.username} for u in identity.static_users],
    }
    if identity.provider == "dex":
        context["dexConfig"] = dex_config(environment)
    if identity.provider == "oidc" and identity.oidc:
        context["oidc"] = {"issuer": identity.oidc.issuer, "clientID": identity.oidc.client_id,
                           "groupsClaim": identity.oidc.groups_claim, "usernameClaim": identity.oidc.username_claim}
        context["oauth2ProxyConfig"] = oauth2_proxy_config(environment)
    return context
