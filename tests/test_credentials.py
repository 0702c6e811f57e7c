"""Credentials and identity: upstream's default values are gone from every environment, and each
secrets backend provides the same Secrets (real kustomize, real upstream manifests, real bcrypt)."""

from __future__ import annotations

import base64
import copy
import json
import stat
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from helpers import PROJECT, TempProject, shipped_spec, source_cache_dirs, spec_for_release
from kfgen.catalog import load_catalog
from kfgen.credentials import required_secrets
from kfgen.kustomize import find_kustomize, kustomize_build
from kfgen.objects import check_environment
from kfgen.yamlio import load_all_plain

RELEASES = ["26.03", "v1.11.0"]
ENVIRONMENTS = ["local", "staging", "prod"]
FIXED = {"root", "kubeflow-oidc-authservice", ""}  # upstream values kept on purpose: names, not secrets


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return values


@pytest.fixture(scope="module")
def upstream_defaults(built) -> dict[str, dict[tuple[str, str, str], dict[str, str]]]:
    """The Secrets each release's upstream bases ship for the catalog's secrets, with their values."""
    catalog = load_catalog(PROJECT / "components")
    kustomize = find_kustomize(PROJECT)
    found: dict[str, dict[tuple[str, str, str], dict[str, str]]] = {}
    for release in RELEASES:
        built(release, "local")  # makes the release's project
        project_root = _project_root(built, release)
        found[release] = {}
        for component in catalog.components.values():
            if not component.secrets_in(release):
                continue
            upstream = component.releases[release]
            # upstream itself, not our base: the release's roots (vendored), and its variants' (from the source
            # cache, since no shipped environment may use them)
            roots = [project_root / "vendor" / root.relpath for root in upstream.resource_roots]
            roots += [next(d for d in (cache / root.relpath for cache in source_cache_dirs()) if d.is_dir())
                      for variant in upstream.variants for root in upstream.with_variant(variant).resource_roots
                      if root not in upstream.resource_roots]
            for root in roots:
                for obj in load_all_plain(kustomize_build(kustomize, root)):
                    if obj.get("kind") == "Secret":
                        namespace = obj["metadata"].get("namespace") or component.namespace
                        found[release][(namespace, obj["metadata"]["name"], str(root))] = _decoded(obj)
    return found


def _project_root(built, release: str) -> Path:
    return built.projects[(release, False)].root


@pytest.mark.parametrize("release", RELEASES)
def test_catalog_secrets_are_what_upstream_ships(release, upstream_defaults):
    catalog = load_catalog(PROJECT / "components")
    shipped = upstream_defaults[release]
    for component in catalog.components.values():
        for secret in component.secrets_in(release):
            matches = [key for key in shipped if key[0] == secret.namespace and
                       (key[1] == secret.name or key[1].startswith(f"{secret.name}-"))]
            assert matches, f"{component.name}: upstream {release} has no Secret {secret.namespace}/{secret.name}"
            # one of upstream's Secrets of that name (the release's, or a variant's) has exactly these keys
            assert sorted(k.name for k in secret.keys) in [sorted(shipped[m]) for m in matches], (component.name, secret.name)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_default_credential_or_plaintext_secret_anywhere(release, env, built, upstream_defaults):
    defaults = {value for values in upstream_defaults[release].values() for value in values.values() if value not in FIXED}
    assert defaults, "the upstream defaults were not found"
    encoded = {base64.b64encode(v.encode()).decode() for v in defaults}
    # Short defaults ("minio", "test") are also ordinary words in names; their encoded forms are not.
    defaults = {v for v in defaults if len(v) >= 8}
    build = built(release, env)
    text = json.dumps(build.objects)
    for value in defaults | encoded:
        assert value not in text, f"{env}: an upstream default credential is still built ({value[:6]}...)"
    assert "user@example.com" not in text, "upstream's example user is still deployed"
    for obj in build.objects:
        if obj.get("kind") == "Secret":
            assert not _decoded(obj), f"{env}: Secret {obj['metadata']['name']} holds values in the build"
    # The rendered files (committed to git) hold none either.
    root = _project_root(built, release)
    for path in [root / "kustomization.yaml", *sorted((root / "overlays").rglob("*")), *sorted((root / "gitops").rglob("*"))]:
        if path.is_file():
            content = path.read_text(encoding="utf-8")
            assert not any(value in content for value in defaults | encoded), path
            for document in load_all_plain(content):
                if isinstance(document, dict) and document.get("kind") == "Secret":
                    assert document.get("$patch") == "delete" or not _decoded(document), path


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_external_secrets_provide_every_required_secret(env, built):
    build = built("26.03", env)
    project = built.projects[("26.03", False)]
    plan = project.plan()
    env_plan = plan.environment(env)
    external = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in build.objects if o["kind"] == "ExternalSecret"}
    needed = required_secrets(plan, env_plan)
    assert {(s.namespace, s.name) for s in needed} == set(external)
    prefix = {"staging": "kubeflow/staging", "prod": "kubeflow/prod"}[env]
    remote: dict[str, set[tuple[str, str]]] = {}
    for secret in needed:
        spec = external[(secret.namespace, secret.name)]["spec"]
        assert spec["target"]["name"] == secret.name
        assert spec["secretStoreRef"]["kind"] == "ClusterSecretStore"
        literal = (spec["target"].get("template") or {}).get("data") or {}
        from_store = {d["secretKey"]: d["remoteRef"] for d in spec["data"]}
        assert set(literal) | set(from_store) == {k.name for k in secret.keys}
        for key in secret.keys:
            if key.name in from_store:
                ref = from_store[key.name]
                assert ref["key"].startswith(f"{prefix}/")
                remote.setdefault(key.credential, set()).add((ref["key"], ref["property"]))
    # One credential, one remote value: Dex and oauth2-proxy read the same client secret.
    assert remote["oidc-client/client-secret"] == {(f"{prefix}/oidc-client", "client-secret")}
    assert all(len(refs) == 1 for refs in remote.values())
    # The upstream Deployments still find the Secrets by the names the ExternalSecrets create.
    oauth2 = next(o for o in build.objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "oauth2-proxy")
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in oauth2["spec"]["template"]["spec"]["containers"][0]["env"]
            if "secretKeyRef" in (e.get("valueFrom") or {})}
    assert refs == {"oauth2-proxy"}


def test_pipelines_mysql_requires_the_password(built):
    mysql = next(o for o in built("26.03", "local").objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mysql")
    env = {e["name"]: e for e in mysql["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MYSQL_ALLOW_EMPTY_PASSWORD" not in env
    assert env["MYSQL_ROOT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mysql-secret", "key": "password"}


def test_local_backend_generates_stable_random_credentials(tmp_path):
    project = TempProject(tmp_path / "project")
    result = project.kfgen("secrets", "--env", "local", "--generate")
    assert result.returncode == 0, result.stderr
    secrets_file = project.root / ".secrets" / "local.yaml"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert (project.root / ".secrets" / ".gitignore").read_text() == "*\n"
    listed = [d for d in yaml.safe_load_all(secrets_file.read_text()) if d]
    documents = {d["metadata"]["name"]: d for d in listed if d["kind"] == "Secret"}
    plan = project.plan()
    needed = required_secrets(plan, plan.environment("local"))
    for secret in needed:
        assert sorted(documents[secret.name]["stringData"]) == sorted(k.name for k in secret.keys)
    # The file applies before the platform exists: the Secrets' namespaces come first, in it.
    namespaces = [d["metadata"]["name"] for d in listed if d["kind"] == "Namespace"]
    assert namespaces == sorted({s.namespace for s in needed})
    assert all(d["kind"] == "Namespace" for d in listed[: len(namespaces)])
    assert documents["dex-oidc-client"]["stringData"]["OIDC_CLIENT_SECRET"] == documents["oauth2-proxy"]["stringData"]["client-secret"]
    assert len(documents["katib-mysql-secrets"]["stringData"]["MYSQL_ROOT_PASSWORD"]) == 32
    login = next(line for line in result.stdout.splitlines() if line.startswith("login: "))
    user, password = login.removeprefix("login: ").split(" / ")
    assert user == "ada@example.com"
    assert bcrypt.checkpw(password.encode(), documents["dex-passwords"]["stringData"]["DEX_HASH_ADA"].encode())
    again = project.kfgen("secrets", "--env", "local", "--generate")
    assert again.returncode == 0 and login in again.stdout
    assert {d["metadata"]["name"]: d for d in yaml.safe_load_all(secrets_file.read_text()) if d and d["kind"] == "Secret"} == documents
    refused = project.kfgen("secrets", "--env", "prod", "--generate")
    assert refused.returncode == 2 and "only backend 'local' generates values" in refused.stderr


def test_secrets_lists_where_each_value_comes_from(tmp_path):
    project = TempProject(tmp_path / "project")
    result = project.kfgen("--output", "json", "secrets", "--env", "prod")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["keys"]
    by_key = {(r["secret"], r["key"]): r["source"] for r in rows}
    assert by_key[("katib-mysql-secrets", "MYSQL_ROOT_PASSWORD")] == \
        "ClusterSecretStore/gcp-secret-manager: key kubeflow/prod/katib-mysql, property root-password"
    assert by_key[("model-registry-db-secrets", "MYSQL_USER_NAME")] == "fixed value 'model_registry'"  # prod's external account


def _sops_secret(secret, encrypted: bool = True) -> dict[str, Any]:
    value = "ENC[AES256_GCM,data:q1w2e3,iv:abc=,tag:def=,type:str]" if encrypted else "hunter2"
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret.name, "namespace": secret.namespace},
            "stringData": {k.name: value for k in secret.keys},
            "sops": {"age": [{"recipient": "age1example", "enc": "-----BEGIN AGE ENCRYPTED FILE-----"}],
                     "lastmodified": "2026-11-28T00:00:00Z", "mac": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "version": "3.9.0"}}


@pytest.mark.slow  # builds and checks a project of its own
def test_sops_backend_references_encrypted_files_and_checks_them(tmp_path, built):
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"]["engine"] = "flux"
    prod = next(e for e in spec["environments"] if e["name"] == "prod")
    prod["secrets"] = {"backend": "sops", "path": "secrets/prod"}
    project = TempProject(tmp_path / "project", spec)
    plan = project.plan()
    needed = required_secrets(plan, plan.environment("prod"))
    by_component: dict[str, list] = {}
    for secret in needed:
        by_component.setdefault(secret.component, []).append(secret)
    for component, secrets in by_component.items():
        folder = project.root / "secrets" / "prod" / component
        folder.mkdir(parents=True)
        (folder / "secrets.yaml").write_text(yaml.safe_dump_all([_sops_secret(s) for s in secrets]))
        (folder / "kustomization.yaml").write_text("resources:\n- secrets.yaml\n")
    project.vendor()
    project.render()
    build = project.build("prod")
    secrets = [o for o in build.objects if o["kind"] == "Secret" and "sops" in o]
    assert {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in secrets} == {(s.namespace, s.name) for s in needed}
    report = check_environment(build, project.plan())
    assert not report.findings, report.findings
    assert project.kfgen("secrets", "--env", "prod").returncode == 0
    katib = project.root / "secrets" / "prod" / "katib" / "secrets.yaml"
    katib.write_text(yaml.safe_dump(_sops_secret(next(s for s in needed if s.name == "katib-mysql-secrets"), encrypted=False)))
    result = project.kfgen("secrets", "--env", "prod")
    assert result.returncode == 1
    assert "secrets/prod/katib/: Secret katib-mysql-secrets key MYSQL_ROOT_PASSWORD is in plain text" in result.stderr


def test_dex_serves_the_spec_connectors_and_users(built):
    def dex_objects(env: str) -> tuple[dict[str, Any], dict[str, Any]]:
        objects = built("26.03", env).objects
        config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "dex")
        deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "dex")
        return yaml.safe_load(config["data"]["config.yaml"]), deployment["spec"]["template"]["spec"]["containers"][0]

    prod, prod_container = dex_objects("prod")
    assert prod["enablePasswordDB"] is False and "staticPasswords" not in prod
    [connector] = prod["connectors"]
    assert connector["id"] == "corp-sso" and connector["type"] == "oidc"
    assert connector["config"]["clientSecret"] == "$DEX_CONNECTOR_CORP_SSO"
    assert connector["config"]["redirectURI"] == "https://kubeflow.example.com/dex/callback"
    assert connector["config"]["issuer"] == "https://sso.example.com"
    env_from = {e["secretRef"]["name"]: e["secretRef"].get("optional", False) for e in prod_container["envFrom"]}
    assert env_from == {"dex-oidc-client": False, "dex-passwords": True, "dex-connectors": False}

    local, local_container = dex_objects("local")
    assert local["enablePasswordDB"] is True and "connectors" not in local
    assert [(u["email"], u["hashFromEnv"]) for u in local["staticPasswords"]] == [("ada@example.com", "DEX_HASH_ADA")]
    assert {e["secretRef"]["name"]: e["secretRef"].get("optional", False) for e in local_container["envFrom"]} == \
        {"dex-oidc-client": False, "dex-passwords": False}


@pytest.mark.slow  # builds and checks a project of its own
def test_external_oidc_provider_replaces_dex(tmp_path):
    spec = spec_for_release("26.03")
    spec["environments"] = [e for e in spec["environments"] if e["name"] == "staging"]
    spec["defaultEnvironment"] = "staging"
    spec["profiles"] = [p for p in spec["profiles"] if "environments" not in p]
    staging = spec["environments"][0]
    staging["identity"] = {"provider": "oidc", "oidc": {"issuer": "https://login.example.com/realms/ml", "clientID": "kubeflow-staging",
                                                        "groupsClaim": "roles"}}
    staging["components"] = {**staging.get("components", {}), "dex": {"enabled": False}}
    project = TempProject(tmp_path / "project", spec)
    project.vendor()
    project.render()
    build = project.build("staging")
    assert not [c for c in build.components if c.name == "dex"]
    objects = build.objects
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("oauth2-proxy-")
                  and "oauth2_proxy.cfg" in o["data"])["data"]["oauth2_proxy.cfg"]
    assert 'oidc_issuer_url = "https://login.example.com/realms/ml"' in config
    assert 'oidc_groups_claim = "roles"' in config and "dex" not in config
    [rule] = next(o for o in objects if o["kind"] == "RequestAuthentication" and o["metadata"]["name"] == "dex-jwt")["spec"]["jwtRules"]
    assert rule["issuer"] == "https://login.example.com/realms/ml"
    assert {"claim": "roles", "header": "kubeflow-groups"} in rule["outputClaimToHeaders"]
    external = next(o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "oauth2-proxy")
    assert external["spec"]["target"]["template"]["data"] == {"client-id": "kubeflow-staging"}
    result = project.kfgen("check", "--env", "staging")
    assert result.returncode == 0, result.stdout + result.stderr
