"""Building with the real kustomize from the real source cache."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter

import pytest
import yaml

from helpers import PROJECT, identity, source_cache_dirs
from kfgen.catalog import load_catalog
from kfgen.mirror import rewrite_text
from kfgen.refs import RemoteDir
from kfgen.render import mirror_image
from kfgen.sources import SourceCache, vendor
from kfgen.yamlio import load_all_plain

RELEASES = ("26.03", "v1.11.0")
ENVIRONMENTS = ("local", "staging", "prod")
CATALOG = load_catalog(PROJECT / "components")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
CULLING_ENV = ("ENABLE_CULLING", "CULL_IDLE_TIME", "IDLENESS_CHECK_PERIOD")
PROFILES = {p["name"] for p in yaml.safe_load((PROJECT / "platform.yaml").read_text())["profiles"]}


def _containers(obj):
    spec = obj["spec"]["template"]["spec"]
    return (spec.get("containers") or []) + (spec.get("initContainers") or [])


def _container_images(value) -> list[str]:
    """The images of containers anywhere in an object, as kustomize's images transformer finds them: workloads,
    and custom resources with containers (serving and training runtimes)."""
    if isinstance(value, list):
        return [image for item in value for image in _container_images(item)]
    if not isinstance(value, dict):
        return []
    found = [c["image"] for key in ("containers", "initContainers") for c in value.get(key) or ()
             if isinstance(c, dict) and isinstance(c.get("image"), str)]
    return found + [image for v in value.values() for image in _container_images(v)]


def _image_name(image: str) -> str:
    name = image.split("@")[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


@pytest.fixture(scope="module")
def upstream_example(tmp_path_factory):
    """What a user gets from `kustomize build example` of kubeflow/manifests 26.03."""
    root = tmp_path_factory.mktemp("upstream")
    example = RemoteDir("github.com", "kubeflow", "manifests", "26.03", "example")
    vendor([example], SourceCache(source_cache_dirs()), root / "vendor")
    result = subprocess.run([str(PROJECT / ".tools/bin/kustomize"), "build", str(root / "vendor" / example.relpath)],
                            capture_output=True, text=True, check=True)
    return load_all_plain(result.stdout)


def _unhashed(key: tuple[str, str, str, str], pattern: re.Pattern[str]) -> tuple[str, str, str, str]:
    return key[:3] + (key[3].rsplit("-", 1)[0],) if pattern.match(key[3]) else key


def test_local_contains_every_object_of_upstream_example(built, upstream_example):
    # The spec's notebook settings change the spawner's ConfigMap, and so its generated name.
    spawner = re.compile(r"^jupyter-web-app-config-[a-z0-9]{10}$")
    ours = {_unhashed(identity(o), spawner) for o in built("26.03", "local").objects}
    upstream = {_unhashed(identity(o), spawner) for o in upstream_example}
    assert len(upstream) > 600
    missing = upstream - ours
    # Upstream's Secrets with default credentials are removed (the secrets backend provides them), and the
    # example user's profile is replaced by the spec's profiles.
    defaults = {s.name for c in CATALOG.components.values() for s in c.secrets_in("26.03")}
    removed = {key for key in missing if key[1] == "Secret" and re.sub(r"-[a-z0-9]{10}$", "", key[3]) in defaults}
    assert {re.sub(r"-[a-z0-9]{10}$", "", key[3]) for key in removed} == defaults - {"model-registry-db-secrets"}  # not in the example
    assert missing - removed == {("kubeflow.org", "Profile", "", "kubeflow-user-example-com")}
    assert ("kubeflow.org", "Profile", "", "ml-research") in ours


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_builds(built, release, env):
    build = built(release, env)
    # staging takes cert-manager from the cluster and serves without Knative: some 140 objects fewer
    assert len(build.objects) > (500 if env == "staging" else 600)
    assert [c.name for c in build.components][:1] in (["cert-manager"], ["istio-crds"])
    duplicates = [k for k, n in Counter(identity(o) for o in build.objects).items() if n > 1]
    assert not duplicates


def _drop(parent: dict, field: str, unwanted) -> None:
    """Take the unwanted items out of parent[field], and the field itself if nothing is left."""
    kept = [item for item in parent.get(field) or () if not unwanted(item)]
    if kept:
        parent[field] = kept
    else:
        parent.pop(field, None)


# Where Pipelines' data settings act (tests/test_pipelines_data.py checks each): the in-cluster stores an
# external one removes, and the objects whose fields name the database, the store or the cloud identity.
IN_CLUSTER_STORES = {"mysql", "mysql-pv-claim", "ml-pipeline-mysql", "seaweedfs", "seaweedfs-pvc", "seaweedfs-service",
                     "ml-pipeline-seaweedfs", "minio-service", "katib-mysql", "model-registry-db", "metadata-mysql"}
STORE_CONFIG = {"pipeline-install-config", "workflow-controller-configmap", "kfp-launcher", "model-registry-db-parameters"}
STORE_READERS = {"ml-pipeline", "ml-pipeline-ui", "kubeflow-pipelines-profile-controller", "workflow-controller",
                 "katib-db-manager", "model-registry-deployment"}


def _without_data_settings(obj) -> bool:
    """Take out what the data settings change; False when the object is one an external store removes."""
    name, kind = obj["metadata"]["name"], obj["kind"]
    if obj["metadata"].get("namespace") == "kubeflow" and name in IN_CLUSTER_STORES and kind != "Secret":
        return False
    if kind == "ServiceAccount":
        obj["metadata"].pop("annotations", None)
        obj.pop("imagePullSecrets", None)  # the environment's registry login (imagePullSecret)
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        obj["spec"]["template"]["spec"].pop("imagePullSecrets", None)
    if kind == "ConfigMap" and name in STORE_CONFIG:
        obj.pop("data")
    if kind == "Deployment" and name in STORE_READERS:
        obj["spec"]["template"]["metadata"].get("labels", {}).pop("azure.workload.identity/use", None)
        obj["spec"]["template"]["spec"]["containers"][0].pop("env", None)
        obj["spec"]["template"]["spec"]["containers"][0].pop("args", None)  # the registry's connection string
    if kind == "PersistentVolumeClaim":
        obj["spec"].pop("storageClassName", None)
        obj["spec"].pop("resources")
    return True


def _outside_mirror(value, mirror: str | None):
    """Every image reference of value, wherever it is (containers, ConfigMaps, runtimes), in one form: as a
    mirror would name it, without the mirror's host."""
    if isinstance(value, dict):
        return {k: _outside_mirror(v, mirror) for k, v in value.items()}
    if isinstance(value, list):
        return [_outside_mirror(v, mirror) for v in value]
    if not isinstance(value, str):
        return value
    if mirror:
        return value.replace(mirror + "/", "")
    return rewrite_text(value, "mirror.test", {}).replace("mirror.test/", "")


def _normalized(objects, mirror: str | None, scheduling: dict | None):
    """Objects with what the spec changes between environments taken out."""
    out = {}
    for original in objects:
        if original["kind"] == "RequestAuthentication" and original["metadata"]["name"] == "m2m-token-issuer":
            continue  # EKS: machine-to-machine tokens from the cluster's issuer (oauth2-proxy's eks variant)
        # ... whose overlay also sets FORCE_HTTPS, which changes the generated ConfigMap's name
        # ... and ConfigMaps holding mirrored images get other generated names too
        obj = json.loads(re.sub(r"\b(oauth2-proxy-parameters|jupyter-web-app-config|tensorboard-controller-config)-[a-z0-9]{10}\b",
                                r"\1", json.dumps(original)))
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "oauth2-proxy-parameters":
            obj["data"].pop("FORCE_HTTPS", None)
        key = identity(obj)
        if not _without_data_settings(obj):
            continue
        if obj["kind"] in ("PodDisruptionBudget", "Profile", "Certificate", "ClusterIssuer") and \
                obj["metadata"]["name"] not in ("kubeflow-self-signing-issuer",) and \
                obj["metadata"].get("namespace") in (None, "istio-system", "kubeflow", "kubeflow-system", "knative-serving",
                                                     "auth", "oauth2-proxy", "cert-manager") and \
                (obj["kind"] != "Certificate" or obj["metadata"]["name"] == "kubeflow-gateway") and \
                (obj["kind"] != "ClusterIssuer" or obj["metadata"]["name"] == "kubeflow-acme"):
            continue
        if obj["kind"] == "ExternalSecret" or obj["metadata"].get("namespace") in PROFILES or \
                (obj["kind"] == "Namespace" and obj["metadata"]["name"] in PROFILES):
            continue  # each environment's secrets backend and profiles
        if key == ("", "ConfigMap", "auth", "dex"):
            obj.pop("data")  # the environment's identity
        if key == ("apps", "Deployment", "auth", "dex"):
            obj["spec"]["template"]["spec"]["containers"][0].pop("envFrom")
        if obj["kind"] == "Deployment":
            obj["spec"].pop("replicas", None)
            obj["spec"]["template"]["spec"]["containers"][0].pop("resources", None)
        if obj["kind"] in WORKLOADS:
            for container in _containers(obj):
                image = container["image"]  # short names too (mysql:8.0), which free text never has
                container["image"] = image[len(mirror) + 1:] if mirror else mirror_image(image, "m")[2:]
                # the mirror sets an environment variable by a strategic merge, which moves it first
                container.get("env", []).sort(key=lambda e: e["name"])
        obj = _outside_mirror(obj, mirror)
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "notebook-controller-deployment":
            manager = obj["spec"]["template"]["spec"]["containers"][0]
            manager["env"] = [e for e in manager["env"] if e["name"] not in CULLING_ENV]
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "jupyter-web-app-config":
            obj.pop("data")  # the environment's notebook settings (tests/test_notebooks.py)
        if key == ("", "ConfigMap", "kubeflow", "inferenceservice-config"):
            obj["data"].pop("deploy")  # KServe's deployment mode: RawDeployment in staging
        if obj["kind"] == "Gateway" and obj["metadata"]["name"] == "kubeflow-gateway":
            obj["spec"].pop("servers")
        if obj["kind"] == "Service" and obj["metadata"]["name"] == "istio-ingressgateway":
            for field in ("type", "externalTrafficPolicy", "loadBalancerSourceRanges"):
                obj["spec"].pop(field, None)
            obj["metadata"].pop("annotations", None)
        if key == ("", "ConfigMap", "kubeflow", "katib-config"):
            # leader election, where katib-controller runs more than one replica
            obj["data"]["katib-config.yaml"] = obj["data"]["katib-config.yaml"].replace("    enableLeaderElection: true\n", "")
        if obj["kind"] in ("Role", "RoleBinding") and obj["metadata"]["name"] == "katib-controller-leader-election":
            continue
        if key == ("apps", "DaemonSet", "kube-system", "istio-cni-node"):
            # the CNI plugin's directory on the cluster's provider (GKE: /home/kubernetes/bin)
            for volume in obj["spec"]["template"]["spec"]["volumes"]:
                if volume["name"] == "cni-bin-dir":
                    volume["hostPath"]["path"] = "/opt/cni/bin"
        if key == ("", "ConfigMap", "kubeflow", "inferenceservice-config"):
            obj["data"].pop("ingress")  # InferenceService URLs on the environment's domain
        if key == ("", "ConfigMap", "knative-serving", "config-domain"):
            obj["data"] = {"_example": obj["data"]["_example"]}  # Knative's routes on the environment's domain
        if obj["metadata"]["name"] == "kfgen-trusted-ca":
            continue  # the environment's internal CAs (trustedCAs), and where they are mounted below
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            _drop(pod, "volumes", lambda v: v["name"] == "kfgen-trusted-ca")
            for container in pod["containers"]:
                _drop(container, "volumeMounts", lambda m: m["name"] == "kfgen-trusted-ca")
                _drop(container, "env", lambda e: e["name"] in ("SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS"))
        if scheduling and obj["kind"] in ("Deployment", "StatefulSet"):
            pod = obj["spec"]["template"]["spec"]
            for name in scheduling.get("nodeSelector") or {}:
                pod.get("nodeSelector", {}).pop(name, None)
            if not pod.get("nodeSelector"):
                pod.pop("nodeSelector", None)
            if "tolerations" in scheduling:
                pod.pop("tolerations", None)
            if "topologySpread" in scheduling:
                pod["topologySpreadConstraints"] = [c for c in pod.get("topologySpreadConstraints", []) if "matchLabelKeys" not in c]
                if not pod["topologySpreadConstraints"]:
                    pod.pop("topologySpreadConstraints")
        out[key] = obj
    return out


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_environments_differ_only_where_the_spec_says(built, env):
    spec = yaml.safe_load((PROJECT / "platform.yaml").read_text())
    env_spec = next(e for e in spec["environments"] if e["name"] == env)
    # Components the cluster provides, or that the spec customizes with the team's own folders, differ by design.
    own = {name for name, config in (env_spec.get("components") or {}).items() if config.get("provided") or config.get("customizations")}
    local_build, other_build = built("26.03", "local"), built("26.03", env)
    # Only what both install (staging leaves Knative out), and as they install it.
    both = {c.name for c in local_build.components} & {c.name for c in other_build.components} - own
    local = [o for c in local_build.components if c.name in both for o in c.objects]
    other = [o for c in other_build.components if c.name in both for o in c.objects]
    scheduling = env_spec.get("scheduling")
    assert _normalized(local, None, scheduling) == _normalized(other, env_spec["registryMirror"], scheduling)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environments_carry_their_settings(built, env):
    spec = yaml.safe_load((PROJECT / "platform.yaml").read_text())
    env_spec = next(e for e in spec["environments"] if e["name"] == env)
    objects = built("26.03", env).objects
    by_id = {identity(o): o for o in objects}
    gateway = by_id[("networking.istio.io", "Gateway", "kubeflow", "kubeflow-gateway")]
    assert {h for s in gateway["spec"]["servers"] for h in s["hosts"]} == {env_spec["domain"]}
    replicas = env_spec["sizing"]["replicas"]
    pipelines_api = by_id[("apps", "Deployment", "kubeflow", "ml-pipeline")]
    assert pipelines_api["spec"]["replicas"] == replicas
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "ml-pipeline"]
    if env_spec["sizing"].get("highAvailability"):
        assert budgets and budgets[0]["spec"]["selector"]["matchLabels"] == pipelines_api["spec"]["selector"]["matchLabels"]
    else:
        assert not budgets
    mirror = env_spec.get("registryMirror")
    if mirror:
        images = [c["image"] for o in objects if o["kind"] in WORKLOADS for c in _containers(o)]
        assert images and all(i.startswith(mirror + "/") for i in images), [i for i in images if not i.startswith(mirror)]
    controller = by_id[("apps", "Deployment", "kubeflow", "notebook-controller-deployment")]
    env_vars = {e["name"]: e for e in controller["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] in CULLING_ENV}
    if env == "prod":  # culling is switched on for prod only
        assert env_vars["ENABLE_CULLING"] == {"name": "ENABLE_CULLING", "value": "true"}
        assert env_vars["CULL_IDLE_TIME"] == {"name": "CULL_IDLE_TIME", "value": "720"}
    else:
        assert "valueFrom" in env_vars["ENABLE_CULLING"]
    service = by_id[("", "Service", "istio-system", "istio-ingressgateway")]
    assert service["spec"]["type"] == ("ClusterIP" if env == "local" else "LoadBalancer")


@pytest.mark.parametrize("release", RELEASES)
def test_catalog_facts_match_what_upstream_builds(built, release):
    build = built(release, "local", True)
    assert {c.name for c in build.components} == {n for n, c in CATALOG.components.items() if release in c.releases}
    for component in build.components:
        declared = CATALOG.components[component.name].releases[release]
        crds = sorted(o["metadata"]["name"] for o in component.objects if o["kind"] == "CustomResourceDefinition")
        assert crds == sorted(declared.crds), component.name
        images = {_image_name(image) for o in component.objects for image in _container_images(o)}
        assert images == set(declared.images), component.name
        deployments = {o["metadata"]["name"] for o in component.objects if o["kind"] == "Deployment"}
        assert set(declared.scalable) <= deployments, component.name
        # Upstream's PodDisruptionBudgets of scalable Deployments are the ones the catalog names (local
        # adds none of its own): sizing must not add a second budget over the same pods.
        pod_labels = {o["metadata"]["name"]: o["spec"]["template"]["metadata"].get("labels") or {}
                      for o in component.objects if o["kind"] == "Deployment"}
        shipped = {(name, o["metadata"]["name"]) for o in component.objects if o["kind"] == "PodDisruptionBudget"
                   for name in declared.scalable
                   if (o["spec"]["selector"].get("matchLabels") or {}).items() <= pod_labels[name].items()}
        assert shipped == {(w.name, w.disruption_budget) for w in declared.workloads if w.disruption_budget}, component.name
        # What GitOps projects allow: every namespace and cluster-scoped kind the component really creates.
        namespaces = {o["metadata"]["namespace"] for o in component.objects if o["metadata"].get("namespace")}
        if component.name != "tenants":  # its namespaces are the spec's profiles
            assert namespaces <= set(declared.namespaces), component.name
        cluster_kinds = {"/".join(identity(o)[:2]).lstrip("/") for o in component.objects if not o["metadata"].get("namespace")}
        assert cluster_kinds <= set(declared.cluster_kinds), component.name


def test_cli_build_writes_one_file_per_component_in_order(make_project, tmp_path):
    project = make_project()
    assert project.kfgen("vendor").returncode == 0
    assert project.kfgen("render").returncode == 0
    out = tmp_path / "out"
    result = project.kfgen("build", "--env", "staging", "--out", str(out), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "environment staging:" in result.stdout
    files = sorted(p.name for p in out.glob("*.yaml"))
    assert files[0].startswith("01-") and len(files) == len(project.plan().environment("staging").components)
    order = [name.split("-", 1)[1].removesuffix(".yaml") for name in files]
    for index, name in enumerate(order):
        for dependency in CATALOG.components[name].depends_on:
            if dependency in order:  # else the cluster provides it (cert-manager in staging)
                assert order.index(dependency) < index
    assert (out / "summary.txt").read_text().startswith("environment staging:")


def test_build_refuses_a_vendor_tree_that_does_not_match_the_lock(make_project, tmp_path):
    project = make_project()
    project.vendor()
    project.render()
    next((project.root / "vendor").rglob("kustomization.yaml")).write_text("resources: []\n")
    result = project.kfgen("build", "--env", "local", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "does not match sources.lock.json" in result.stderr


@pytest.mark.slow  # a remote-mode build of every component
def test_remote_mode_references_pinned_urls_and_builds_from_the_cache(make_project, built, tmp_path):
    spec = yaml.safe_load((PROJECT / "platform.yaml").read_text())
    spec["sources"]["mode"] = "remote"
    project = make_project(spec)
    assert project.kfgen("render").returncode == 0
    base = yaml.safe_load((project.root / "base/pipelines/kustomization.yaml").read_text())
    assert base["resources"] == ["https://github.com/kubeflow/manifests//applications/pipeline/overlays?ref=26.03"]
    def listing():  # everything but the build cache, which lives in the project by design
        return sorted(p.relative_to(project.root) for p in project.root.rglob("*") if ".kfgen" not in p.parts)

    before = listing()
    result = project.kfgen("--output", "json", "build", "--env", "local", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert listing() == before  # nothing written into it
    objects = [o for f in sorted((tmp_path / "out").glob("*.yaml")) for o in load_all_plain(f.read_text())]
    assert sorted(identity(o) for o in objects) == sorted(identity(o) for o in built("26.03", "local").objects)
