"""Katib's and the model registry's databases: staging and prod keep them in their cloud's MySQL (Katib in
both, the model registry in prod), local in the cluster; every place upstream reads the database from is
set, the in-cluster MySQL is gone where an external one is chosen, and the backend provides the password."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import TempProject, shipped_spec, spec_for_release
from kfgen.build import EnvironmentBuild

DSN = "--embedmd-database-dsn=$(MYSQL_USER_NAME):$(MYSQL_ROOT_PASSWORD)@tcp({host}:$(MYSQL_PORT))/$(MYSQL_DATABASE)?charset=utf8mb4"
KATIB_STORE = {"katib-mysql"}
REGISTRY_STORE = {"model-registry-db", "metadata-mysql"}


def _settings(env: str, component: str) -> dict[str, Any]:
    environment = next(e for e in shipped_spec()["environments"] if e["name"] == env)
    return ((environment.get("components") or {}).get(component) or {}).get("settings") or {}


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("release", ["26.03", "v1.11.0"])
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_katib_on_the_external_mysql(built, release, env):
    database = _settings(env, "katib")["database"]
    assert database["type"] == "externalMySQL"
    objects = built(release, env).objects
    assert not [o for o in objects if o["metadata"]["name"] in KATIB_STORE]
    env_vars = _env(_one(objects, "Deployment", "katib-db-manager"))
    assert env_vars["DB_NAME"] == "mysql"
    assert env_vars["DB_USER"] == database["user"]
    assert env_vars["KATIB_MYSQL_DB_HOST"] == database["host"]
    assert env_vars["KATIB_MYSQL_DB_PORT"] == str(database.get("port", 3306))
    assert env_vars["KATIB_MYSQL_DB_DATABASE"] == database["name"]
    assert env_vars["DB_PASSWORD"] == {"secretKeyRef": {"name": "katib-mysql-secrets", "key": "MYSQL_ROOT_PASSWORD"}}
    secret = _one(objects, "ExternalSecret", "katib-mysql-secrets")
    assert [d["secretKey"] for d in secret["spec"]["data"]] == ["MYSQL_ROOT_PASSWORD"]


@pytest.mark.parametrize("release", ["26.03", "v1.11.0"])
def test_model_registry_on_the_external_mysql(built, release):
    database = _settings("prod", "model-registry")["database"]
    objects = built(release, "prod").objects
    assert not [o for o in objects if o["metadata"]["name"] in REGISTRY_STORE]
    server = _one(objects, "Deployment", "model-registry-deployment")
    assert server["spec"]["template"]["spec"]["containers"][0]["args"][3] == DSN.format(host=database["host"])
    parameters = _one(objects, "ConfigMap", "model-registry-db-parameters")["data"]
    assert parameters["MYSQL_DATABASE"] == database["name"] and parameters["MYSQL_PORT"] == "3306"
    # the sidecar stays off the database's port (upstream's replacement from MYSQL_PORT)
    assert server["spec"]["template"]["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeOutboundPorts"] == "3306"
    secret = _one(objects, "ExternalSecret", "model-registry-db-secrets")["spec"]
    assert secret["target"]["template"]["data"] == {"MYSQL_USER_NAME": database["user"]}
    assert [d["secretKey"] for d in secret["data"]] == ["MYSQL_ROOT_PASSWORD"]


def test_local_keeps_the_in_cluster_databases(built):
    objects = built("26.03", "local").objects
    names = {o["metadata"]["name"] for o in objects if o["kind"] in ("Deployment", "PersistentVolumeClaim")}
    assert names >= KATIB_STORE | REGISTRY_STORE
    env_vars = _env(_one(objects, "Deployment", "katib-db-manager"))
    assert env_vars["DB_PASSWORD"] == {"secretKeyRef": {"name": "katib-mysql-secrets", "key": "MYSQL_ROOT_PASSWORD"}}
    assert "KATIB_MYSQL_DB_HOST" not in env_vars
    server = _one(objects, "Deployment", "model-registry-deployment")
    assert server["spec"]["template"]["spec"]["containers"][0]["args"][3] == DSN.format(host="model-registry-db")


def test_secrets_lists_the_external_accounts(project):
    listed = project.kfgen("--output", "json", "secrets", "--env", "prod")
    assert listed.returncode == 0, listed.stderr
    rows = {(r["secret"], r["key"]): r for r in json.loads(listed.stdout)["keys"]}
    assert ("katib-mysql-secrets", "MYSQL_ROOT_PASSWORD") in rows
    assert rows[("model-registry-db-secrets", "MYSQL_USER_NAME")]["source"] == "fixed value 'model_registry'"


POSTGRES = {"katib": {"type": "externalPostgreSQL", "host": "pg.db.example.com", "user": "katib", "name": "katib_prod"},
            "model-registry": {"type": "externalPostgreSQL", "host": "pg.db.example.com", "port": 6432,
                               "user": "model_registry", "sslMode": "verify-full"}}


@pytest.fixture(scope="module", params=["26.03", "v1.11.0"])
def postgres_project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TempProject:
    """The shipped spec with Katib and the model registry on an external PostgreSQL server in prod, and the
    model registry on upstream's PostgreSQL in the cluster in staging."""
    spec = spec_for_release(request.param)
    prod = next(e for e in spec["environments"] if e["name"] == "prod")
    for component, database in POSTGRES.items():
        prod["components"][component]["settings"]["database"] = database
    staging = next(e for e in spec["environments"] if e["name"] == "staging")
    staging["components"]["model-registry"] = {"settings": {"database": {"type": "inClusterPostgreSQL"},
                                                            "persistence": {"storageClass": "gp3", "size": "30Gi"}}}
    project = TempProject(tmp_path_factory.mktemp(f"postgres-{request.param}") / "project", spec)
    project.vendor()
    project.render()
    return project


@pytest.fixture(scope="module")
def on_postgres(postgres_project: TempProject) -> EnvironmentBuild:
    return postgres_project.build("prod")


def test_katib_on_an_external_postgresql(on_postgres):
    objects = on_postgres.objects
    assert not [o for o in objects if o["metadata"]["name"] in KATIB_STORE]
    env_vars = _env(_one(objects, "Deployment", "katib-db-manager"))
    assert env_vars["DB_NAME"] == "postgres"
    assert env_vars["DB_USER"] == "katib"
    assert env_vars["KATIB_POSTGRESQL_DB_HOST"] == "pg.db.example.com"
    assert env_vars["KATIB_POSTGRESQL_DB_PORT"] == "5432"
    assert env_vars["KATIB_POSTGRESQL_DB_DATABASE"] == "katib_prod"
    assert env_vars["KATIB_POSTGRESQL_SSL_MODE"] == "require"
    assert not [name for name in env_vars if name.startswith("KATIB_MYSQL_")]
    assert env_vars["DB_PASSWORD"] == {"secretKeyRef": {"name": "katib-mysql-secrets", "key": "MYSQL_ROOT_PASSWORD"}}


def test_model_registry_on_an_external_postgresql(on_postgres):
    objects = on_postgres.objects
    assert not [o for o in objects if o["metadata"]["name"] in REGISTRY_STORE]
    server = _one(objects, "Deployment", "model-registry-deployment")
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[2:] == ["--datastore-type=$(MODEL_REGISTRY_DATA_STORE_TYPE)", "--embedmd-database-type=postgres",
                        "--embedmd-database-dsn=postgresql://$(MYSQL_USER_NAME):$(MYSQL_ROOT_PASSWORD)@pg.db.example.com:"
                        "$(MYSQL_PORT)/$(MYSQL_DATABASE)?sslmode=verify-full"]
    parameters = _one(objects, "ConfigMap", "model-registry-db-parameters")["data"]
    assert parameters["MYSQL_DATABASE"] == "metadb" and parameters["MYSQL_PORT"] == "6432"
    assert server["spec"]["template"]["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeOutboundPorts"] == "6432"
    secret = _one(objects, "ExternalSecret", "model-registry-db-secrets")["spec"]
    assert secret["target"]["template"]["data"] == {"MYSQL_USER_NAME": "model_registry"}


def test_model_registry_on_upstreams_postgresql_in_the_cluster(postgres_project):
    """inClusterPostgreSQL builds upstream's postgres overlay, a variant of its own that the setting chooses."""
    assert (postgres_project.root / "base/model-registry.postgres").is_dir()
    objects = postgres_project.build("staging").objects
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("PersistentVolumeClaim", "metadata-mysql") not in names
    claim = _one(objects, "PersistentVolumeClaim", "metadata-postgres")["spec"]
    assert claim["storageClassName"] == "gp3" and claim["resources"]["requests"]["storage"] == "30Gi"
    database = _one(objects, "Deployment", "model-registry-db")["spec"]["template"]["spec"]
    assert database["containers"][0]["image"].rsplit("/", 1)[-1].startswith("postgres:")
    assert database["volumes"][0]["persistentVolumeClaim"]["claimName"] == "metadata-postgres"
    server = _one(objects, "Deployment", "model-registry-deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--embedmd-database-type=postgres" in server["args"]
    secret = _one(objects, "ExternalSecret", "model-registry-db-secrets")["spec"]
    assert [d["secretKey"] for d in secret["data"]] == ["POSTGRES_PASSWORD"]
    assert secret["target"]["template"]["data"] == {"POSTGRES_USER": "root"}
    # the variant's images, the catalog's `images` of the variant, are pulled (through staging's mirror)
    from kfgen.catalog import load_catalog
    from kfgen.mirror import mirror_image

    component = load_catalog(postgres_project.root / "components").components["model-registry"]
    plan = postgres_project.plan()
    variant = next(p for p in plan.environment("staging").components if p.name == "model-registry").variant
    assert variant is not None and variant.images == ("postgres",)
    release = component.releases[plan.platform.kubeflow_version].with_variant(variant)
    mirror = plan.environment("staging").environment.registry_mirror
    pulled = {c["image"].split("@")[0].rsplit(":", 1)[0] for o in objects if o["kind"] == "Deployment"
              and o["metadata"]["name"].startswith("model-registry") for c in o["spec"]["template"]["spec"]["containers"]}
    assert pulled == {mirror_image(name, mirror) for name in release.images if name != "mysql"}
    # the other environments keep upstream's MySQL overlay
    assert not [o for o in postgres_project.build("local").objects if o["metadata"]["name"] == "metadata-postgres"]
