"""Pipelines' data settings (database, object store, cloud identity, volumes) and the volumes of Katib's and
the model registry's databases, in the built objects.

Each setting is looked for everywhere upstream reads it: the install config and the Deployments whose
environment takes its keys, the workflow controller's artifact repository, the kfp-launcher defaults,
the service accounts (default-editor in every profile namespace among them), and the Secrets
`kfgen secrets` lists. The shipped staging (EKS) and prod (GKE) environments use external stores,
`local` keeps upstream's; the other variants are built from specs of their own.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from helpers import identity, shipped_spec

RELEASES = ["26.03", "v1.11.0"]
STAGING_HOST = "kubeflow-staging.cluster-c1a2b3c4d5e6.eu-west-1.rds.amazonaws.com"
IN_CLUSTER_DATABASE = {("", "Service", "kubeflow", "mysql"), ("apps", "Deployment", "kubeflow", "mysql"),
                       ("", "PersistentVolumeClaim", "kubeflow", "mysql-pv-claim"), ("", "ServiceAccount", "kubeflow", "mysql")}
IN_CLUSTER_STORE = {("", "Service", "kubeflow", "seaweedfs"), ("apps", "Deployment", "kubeflow", "seaweedfs"),
                    ("", "PersistentVolumeClaim", "kubeflow", "seaweedfs-pvc"), ("", "ServiceAccount", "kubeflow", "seaweedfs")}
STORE_READERS = ["ml-pipeline", "ml-pipeline-ui", "argo", "pipeline-runner"]


def _pipelines(build) -> list[dict[str, Any]]:
    return next(c.objects for c in build.components if c.name == "pipelines")


def _by_id(objects) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {identity(o): o for o in objects}


def _env(objects, deployment: str, container: int = 0) -> dict[str, Any]:
    """A Deployment's environment with every configMapKeyRef resolved against the built ConfigMaps,
    as the kubelet would: the value each program really reads."""
    by_id = _by_id(objects)
    pod = by_id[("apps", "Deployment", "kubeflow", deployment)]["spec"]["template"]["spec"]
    values: dict[str, Any] = {}
    for entry in pod["containers"][container].get("env") or []:
        source = entry.get("valueFrom") or {}
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            data = by_id[("", "ConfigMap", "kubeflow", ref["name"])]["data"]
            values[entry["name"]] = data.get(ref["key"]) if ref.get("optional") else data[ref["key"]]
        elif "secretKeyRef" in source:
            values[entry["name"]] = ("secret", source["secretKeyRef"]["name"], source["secretKeyRef"]["key"])
        else:
            values[entry["name"]] = entry.get("value")
    return values


def _secret_refs(objects) -> set[str]:
    """Names of the Secrets the pipelines workloads and the artifact repository refer to."""
    return {ref for ref in _walk_secret_names(objects)}


def _walk_secret_names(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretKeyRef", "secretRef") and isinstance(value, dict) and "name" in value:
                yield value["name"]
            else:
                yield from _walk_secret_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_secret_names(item)


def _artifact_repository(objects) -> dict[str, Any]:
    config = _by_id(objects)[("", "ConfigMap", "kubeflow", "workflow-controller-configmap")]
    return yaml.safe_load(config["data"]["artifactRepository"])


# -- the shipped environments ---------------------------------------------------------------------

@pytest.mark.parametrize("release", RELEASES)
def test_local_keeps_upstreams_in_cluster_stores(built, release):
    objects = _pipelines(built(release, "local"))
    ids = set(_by_id(objects))
    assert ids >= IN_CLUSTER_DATABASE | IN_CLUSTER_STORE
    api = _env(objects, "ml-pipeline")
    assert api["DBCONFIG_HOST"] == "mysql" and api["DBCONFIG_PORT"] == "3306" and api["DBCONFIG_DBNAME"] == "mlpipeline"
    in_cluster = "seaweedfs.kubeflow" if release == "26.03" else "minio-service.kubeflow"  # v1.11.0 names SeaweedFS so
    assert api["OBJECTSTORECONFIG_HOST"] == in_cluster
    repository = _artifact_repository(objects)
    assert repository["s3"]["endpoint"] == f"{in_cluster}:9000"
    assert repository["s3"]["accessKeySecret"] == {"name": "mlpipeline-minio-artifact", "key": "accesskey"}
    claims = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    assert {name: spec["resources"]["requests"]["storage"] for name, spec in claims.items()} == {"mysql-pv-claim": "20Gi", "seaweedfs-pvc": "20Gi"}
    assert not any("storageClassName" in spec for spec in claims.values())
    assert not any(o["kind"] == "ServiceAccount" and o["metadata"].get("annotations") for o in objects)


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_external_database_is_read_everywhere_and_mysql_is_gone(built, release, env):
    settings = _shipped_settings(env)["database"]
    prefix = settings.get("databasePrefix", "")
    objects = _pipelines(built(release, env))
    assert not IN_CLUSTER_DATABASE & set(_by_id(objects))
    assert not [o for o in objects if "mysql" in o["metadata"]["name"] and o["kind"] != "Secret" and o["kind"] != "ExternalSecret"]
    api = _env(objects, "ml-pipeline")
    assert (api["DBCONFIG_HOST"], api["DBCONFIG_MYSQLCONFIG_HOST"], api["DBCONFIG_PORT"]) == (settings["host"], settings["host"], "3306")
    assert api["DBCONFIG_DBNAME"] == api["DBCONFIG_MYSQLCONFIG_DBNAME"] == prefix + "mlpipeline"
    metadata = _env(objects, "metadata-grpc-deployment")
    assert (metadata["MYSQL_HOST"], metadata["MYSQL_PORT"], metadata["MYSQL_DATABASE"]) == (settings["host"], "3306", prefix + "metadb")
    cache = _env(objects, "cache-server")
    assert (cache["DBCONFIG_HOST_NAME"], cache["DBCONFIG_PORT"], cache["DBCONFIG_DB_NAME"]) == (settings["host"], "3306", prefix + "cachedb")
    for env_vars in (api, metadata, cache):
        assert ("secret", "mysql-secret", "password") in env_vars.values()
    # The account comes with the Secret the backend makes: its user is the setting, its password the store's.
    external = _by_id(objects)[("external-secrets.io", "ExternalSecret", "kubeflow", "mysql-secret")]
    assert external["spec"]["target"]["template"]["data"] == {"username": settings["user"]}
    assert [d["secretKey"] for d in external["spec"]["data"]] == ["password"]


@pytest.mark.parametrize("release", RELEASES)
def test_staging_reaches_s3_through_irsa(built, release):
    store = _shipped_settings("staging")["objectStore"]
    build = built(release, "staging")
    objects = _pipelines(build)
    assert not IN_CLUSTER_STORE & set(_by_id(objects))
    assert not [o for o in objects if ("seaweedfs" in o["metadata"]["name"] or "minio-service" in o["metadata"]["name"])
                and o["kind"] != "PeerAuthentication"]
    config = _by_id(objects)[("", "ConfigMap", "kubeflow", "pipeline-install-config")]["data"]
    assert config["bucketName"] == store["bucket"]
    assert config["defaultPipelineRoot"] == f"s3://{store['bucket']}/{store['pathPrefix']}"
    api = _env(objects, "ml-pipeline")
    assert (api["OBJECTSTORECONFIG_HOST"], api["OBJECTSTORECONFIG_PORT"], api["OBJECTSTORECONFIG_SECURE"],
            api["OBJECTSTORECONFIG_REGION"], api["OBJECTSTORECONFIG_BUCKETNAME"]) == (
        store["endpoint"], "443", "true", store["region"], store["bucket"])
    ui = _env(objects, "ml-pipeline-ui")
    assert (ui["MINIO_HOST"], ui["MINIO_PORT"], ui["MINIO_SSL"]) == (store["endpoint"], "443", "true")
    assert (ui["AWS_S3_ENDPOINT"], ui["AWS_REGION"], ui["AWS_SSL"]) == (store["endpoint"], store["region"], "true")
    controller = _env(objects, "kubeflow-pipelines-profile-controller")
    assert controller["S3_ENDPOINT_URL"] == controller["AWS_ENDPOINT_URL"] == f"https://{store['endpoint']}"
    assert (controller["AWS_REGION"], controller["OBJECT_STORE_HOST"]) == (store["region"], store["endpoint"])
    assert controller["KFP_DEFAULT_PIPELINE_ROOT"] == config["defaultPipelineRoot"]
    repository = _artifact_repository(objects)["s3"]
    assert (repository["endpoint"], repository["bucket"], repository["region"], repository["insecure"]) == (
        store["endpoint"], store["bucket"], store["region"], False)
    assert repository["keyFormat"].startswith(f"{store['pathPrefix']}/private-artifacts/{{{{workflow.namespace}}}}/")
    assert repository["useSDKCreds"] is True and "accessKeySecret" not in repository
    launcher = _by_id(objects)[("", "ConfigMap", "kubeflow", "kfp-launcher")]["data"]
    assert launcher["defaultPipelineRoot"] == config["defaultPipelineRoot"]
    provider = json.loads(launcher["providers"])["s3"]["default"]
    assert (provider["endpoint"], provider["region"], provider["disableSSL"], provider["credentials"]) == (
        store["endpoint"], store["region"], False, {"fromEnv": True})
    # No keys: nothing refers to the object-store Secret, and every reader carries the role.
    assert "mlpipeline-minio-artifact" not in _secret_refs(objects)
    _assert_annotated(build, "eks.amazonaws.com/role-arn", store["identity"]["awsRoleArn"], "staging")


@pytest.mark.parametrize("release", RELEASES)
def test_prod_reaches_cloud_storage_through_workload_identity(built, release):
    store = _shipped_settings("prod")["objectStore"]
    build = built(release, "prod")
    objects = _pipelines(build)
    root = f"gs://{store['bucket']}/{store['pathPrefix']}"
    assert _by_id(objects)[("", "ConfigMap", "kubeflow", "pipeline-install-config")]["data"]["defaultPipelineRoot"] == root
    launcher = _by_id(objects)[("", "ConfigMap", "kubeflow", "kfp-launcher")]["data"]
    assert launcher["defaultPipelineRoot"] == root
    assert json.loads(launcher["providers"]) == {"gs": {"default": {"credentials": {"fromEnv": True}}}}
    repository = _artifact_repository(objects)
    assert repository["gcs"]["bucket"] == store["bucket"] and "s3" not in repository and "serviceAccountKeySecret" not in repository["gcs"]
    assert "mlpipeline-minio-artifact" not in _secret_refs(objects)
    # ml-serving reaches the store as its own account (profiles[].objectStoreIdentity), the others as the platform's
    own = {p["name"]: p["objectStoreIdentity"]["gcpServiceAccount"]
           for e in shipped_spec()["environments"] if e["name"] == "prod" for p in e["profiles"] if "objectStoreIdentity" in p}
    assert set(own) == {"ml-serving"}
    _assert_annotated(build, "iam.gke.io/gcp-service-account", store["identity"]["gcpServiceAccount"], "prod", own)


def _assert_annotated(build, key: str, value: str, env: str, own: dict[str, str] | None = None) -> None:
    objects = _pipelines(build)
    by_id = _by_id(objects)
    for name in STORE_READERS:
        assert by_id[("", "ServiceAccount", "kubeflow", name)]["metadata"]["annotations"] == {key: value}, name
    tenants = next(c.objects for c in build.components if c.name == "tenants")
    editors = {o["metadata"]["namespace"]: o["metadata"]["annotations"] for o in tenants
               if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "default-editor"}
    profiles = {o["metadata"]["name"] for o in tenants if o["kind"] == "Profile"}
    assert profiles and editors == {name: {key: (own or {}).get(name, value)} for name in profiles}


def _shipped_settings(env: str) -> dict[str, Any]:
    spec = shipped_spec()
    environment = next(e for e in spec["environments"] if e["name"] == env)
    return environment["components"]["pipelines"]["settings"]


def test_secrets_lists_exactly_what_the_settings_need(make_project):
    project = make_project()
    listed = {env: project.kfgen("secrets", "--env", env) for env in ("local", "staging")}
    assert all(r.returncode == 0 for r in listed.values()), {e: r.stderr for e, r in listed.items()}
    assert "kubeflow/mlpipeline-minio-artifact accesskey" in listed["local"].stdout
    assert "kubeflow/mysql-secret username: fixed value 'root'" in listed["local"].stdout
    assert "mlpipeline-minio-artifact" not in listed["staging"].stdout  # IRSA: no keys
    assert "kubeflow/mysql-secret username: fixed value 'kfp'" in listed["staging"].stdout
    assert "kubeflow/mysql-secret password: ClusterSecretStore/aws-secrets-manager" in listed["staging"].stdout


# -- variants the shipped spec does not use -------------------------------------------------------

def _variants_spec() -> dict[str, Any]:
    """Three environments beside local: Azure identity, access keys with a plain-HTTP MinIO, bigger volumes."""
    spec = copy.deepcopy(shipped_spec())
    local = next(e for e in spec["environments"] if e["name"] == "local")
    spec["environments"] = [local]
    spec["profiles"] = [p for p in spec["profiles"] if not p.get("environments")]
    store = {"type": "external", "endpoint": "minio.storage.example.com", "region": "us-east-1", "bucket": "kfp"}
    for name, settings in (
        ("azure", {"objectStore": {**store, "identity": {"azureClientId": "0b6c9e2a-4d3f-4e5a-9b7c-1d2e3f4a5b6c"}},
                   "database": {"host": "mysql.db.example.com", "user": "pipelines"}}),
        ("keys", {"objectStore": {**store, "tls": False, "port": 9000},
                  # the platform-wide layer chooses the type, this layer the rest: the merged whole is what counts
                  "database": {"host": "mysql.db.example.com", "user": "pipelines", "port": 3307, "databases": {"cache": "kfp_cache"}}}),
        ("volumes", {"persistence": {"storageClass": "fast-ssd", "databaseSize": "50Gi", "objectStoreSize": "1Ti"},
                     "database": {"type": "inCluster"}}),
    ):
        environment = copy.deepcopy(local)
        environment["name"] = name
        environment["components"] = {"pipelines": {"settings": settings}}
        if name == "volumes":  # and Katib's and the model registry's in-cluster databases
            environment["components"].update({component: {"settings": {"persistence": {"storageClass": "premium-rwo", "size": size}}}
                                              for component, size in VOLUMES.items()})
        spec["environments"].append(environment)
    spec["components"]["pipelines"] = {"settings": {"database": {"type": "externalMySQL"}}}
    spec["environments"][0]["components"] = {"pipelines": {"settings": {"database": {"type": "inCluster"}}}}
    return spec


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    from helpers import TempProject

    project = TempProject(tmp_path_factory.mktemp("variants") / "project", _variants_spec())
    project.vendor()
    project.render()
    return project


def test_azure_identity_labels_the_pods_that_read_the_store(variants):
    build = variants.build("azure")
    objects = _pipelines(build)
    client = "0b6c9e2a-4d3f-4e5a-9b7c-1d2e3f4a5b6c"
    by_id = _by_id(objects)
    for name in ("ml-pipeline", "ml-pipeline-ui", "workflow-controller"):
        labels = by_id[("apps", "Deployment", "kubeflow", name)]["spec"]["template"]["metadata"]["labels"]
        assert labels["azure.workload.identity/use"] == "true", name
    # Pipeline steps run in profile namespaces: every workflow's pods carry the label.
    patch = json.loads(_env(objects, "ml-pipeline")["COMPILED_PIPELINE_SPEC_PATCH"])
    assert patch == {"podMetadata": {"labels": {"azure.workload.identity/use": "true"}}}
    _assert_annotated(build, "azure.workload.identity/client-id", client, "azure")
    assert "mlpipeline-minio-artifact" not in _secret_refs(objects)


def test_access_keys_and_plain_http_store(variants):
    objects = _pipelines(variants.build("keys"))
    api = _env(objects, "ml-pipeline")
    assert (api["OBJECTSTORECONFIG_HOST"], api["OBJECTSTORECONFIG_PORT"], api["OBJECTSTORECONFIG_SECURE"]) == (
        "minio.storage.example.com", "9000", "false")
    assert api["OBJECTSTORECONFIG_ACCESSKEY"] == ("secret", "mlpipeline-minio-artifact", "accesskey")
    ui = _env(objects, "ml-pipeline-ui")
    assert ui["AWS_ACCESS_KEY_ID"] == ("secret", "mlpipeline-minio-artifact", "accesskey")
    assert ui["MINIO_SECRET_KEY"] == ("secret", "mlpipeline-minio-artifact", "secretkey")
    repository = _artifact_repository(objects)["s3"]
    assert (repository["endpoint"], repository["insecure"]) == ("minio.storage.example.com:9000", True)
    assert repository["secretKeySecret"] == {"name": "mlpipeline-minio-artifact", "key": "secretkey"}
    assert "useSDKCreds" not in repository
    provider = json.loads(_by_id(objects)[("", "ConfigMap", "kubeflow", "kfp-launcher")]["data"]["providers"])["s3"]["default"]
    assert provider["credentials"]["secretRef"]["secretName"] == "mlpipeline-minio-artifact" and provider["disableSSL"] is True
    assert _env(objects, "kubeflow-pipelines-profile-controller")["S3_ENDPOINT_URL"] == "http://minio.storage.example.com:9000"
    assert not any(o["kind"] == "ServiceAccount" and o["metadata"].get("annotations") for o in objects)
    # The database: platform-wide type, environment host, port, user and one renamed database.
    cache = _env(objects, "cache-server")
    assert (cache["DBCONFIG_HOST_NAME"], cache["DBCONFIG_PORT"], cache["DBCONFIG_DB_NAME"]) == ("mysql.db.example.com", "3307", "kfp_cache")
    assert _env(objects, "ml-pipeline")["DBCONFIG_DBNAME"] == "mlpipeline"
    listed = variants.kfgen("secrets", "--env", "keys")
    assert "kubeflow/mlpipeline-minio-artifact accesskey" in listed.stdout
    assert "kubeflow/mysql-secret username: fixed value 'pipelines'" in listed.stdout


def test_volumes_of_the_in_cluster_stores(variants):
    objects = _pipelines(variants.build("volumes"))
    claims = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    assert claims["mysql-pv-claim"]["storageClassName"] == claims["seaweedfs-pvc"]["storageClassName"] == "fast-ssd"
    assert claims["mysql-pv-claim"]["resources"]["requests"]["storage"] == "50Gi"
    assert claims["seaweedfs-pvc"]["resources"]["requests"]["storage"] == "1Ti"
    assert claims["seaweedfs-pvc"]["accessModes"] == ["ReadWriteOnce"]  # the rest of upstream's claim stays


def test_removing_a_store_fails_the_build_when_upstream_changed_it(variants):
    """The removal first tests that the object is still upstream's: a changed claim name fails the build."""
    from kfgen.errors import BuildError

    patch = variants.root / "overlays" / "keys" / "pipelines" / "check-in-cluster-object-store.yaml"
    text = patch.read_text(encoding="utf-8")
    patch.write_text(text.replace("value: seaweedfs-pvc", "value: seaweedfs-data"), encoding="utf-8")
    try:
        with pytest.raises(BuildError, match="test"):
            variants.build("keys")
    finally:
        patch.write_text(text, encoding="utf-8")


VOLUMES = {"katib": "50Gi", "model-registry": "20Gi"}
CLAIMS = {"katib": "katib-mysql", "model-registry": "metadata-mysql"}


@pytest.mark.parametrize("release", RELEASES)
def test_katib_and_model_registry_keep_upstream_volumes(built, release):
    build = built(release, "local")
    for component, claim in CLAIMS.items():
        objects = next(c.objects for c in build.components if c.name == component)
        volume = _by_id(objects)[("", "PersistentVolumeClaim", "kubeflow", claim)]["spec"]
        # upstream's claim: the cluster's default class, 10Gi
        assert "storageClassName" not in volume and volume["resources"]["requests"]["storage"] == "10Gi"


def test_katib_and_model_registry_volumes(variants):
    build = variants.build("volumes")
    for component, claim in CLAIMS.items():
        objects = next(c.objects for c in build.components if c.name == component)
        volume = _by_id(objects)[("", "PersistentVolumeClaim", "kubeflow", claim)]["spec"]
        assert (volume["storageClassName"], volume["resources"]["requests"]["storage"]) == ("premium-rwo", VOLUMES[component])
