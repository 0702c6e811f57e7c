"""The e2e harness itself: the test cluster behaves like a real one where the GitOps scenarios need it
(workloads become available on the fake nodes, claims are bound, namespaces and owned objects are
deleted, autoscalers without metrics get their conditions), and the git server takes pushes and clones."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from e2e.cluster import POD_CIDR, STORAGE_CLASS, Cluster, ClusterTimeout, ProcessExited
from e2e.gitserver import GitServer

pytestmark = pytest.mark.e2e

IMAGE = "registry.example.com/app:1"  # never pulled: kwok runs no container


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input="\n".join(json.dumps(o) for o in objects))


def get(cluster: Cluster, namespace: str, *what: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "-n", namespace, *what, "-o", "json").stdout)


def pod_template(app: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "app", "image": IMAGE}], **spec}}


def deployment(name: str, replicas: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": pod_template(name, **spec)},
    }


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    return get(cluster, namespace, "pods", "-l", f"app={app}")["items"]


def test_deployment_becomes_available_with_ready_pods_on_fake_nodes(cluster, namespace):
    apply(cluster, namespace, deployment("web", replicas=3))

    def available():
        status = get(cluster, namespace, "deployment", "web")
        return condition(status, "Available").get("status") == "True" and status["status"].get("readyReplicas") == 3

    cluster.wait_for(available, 30, "Deployment web to be Available", logs=["kube-controller-manager", "kwok"])
    running = pods(cluster, namespace, "web")
    assert len(running) == 3
    pod_network = ipaddress.ip_network(POD_CIDR)
    for pod in running:
        assert pod["spec"]["nodeName"] in cluster.nodes
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready")["status"] == "True"
        assert ipaddress.ip_address(pod["status"]["podIP"]) in pod_network
        # ServiceAccount admission is on: the pod runs as `default`, with its token volume.
        assert pod["spec"]["serviceAccountName"] == "default"
        assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])


def test_service_gets_the_ready_pods_as_endpoints(cluster, namespace):
    apply(
        cluster,
        namespace,
        deployment("api", replicas=2),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}},
    )

    def ready_addresses():
        slices = get(cluster, namespace, "endpointslices", "-l", "kubernetes.io/service-name=api")["items"]
        return sorted(a for s in slices for e in s.get("endpoints") or [] if e["conditions"].get("ready") for a in e["addresses"])

    addresses = cluster.wait_for(lambda: len(ready_addresses()) == 2 and ready_addresses(), 30, "two ready endpoints of Service api")
    assert addresses == sorted(p["status"]["podIP"] for p in pods(cluster, namespace, "api"))


def test_daemonset_runs_a_ready_pod_on_each_node(cluster, namespace):
    apply(cluster, namespace, {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": pod_template("agent")},
    })

    def ready():
        status = get(cluster, namespace, "daemonset", "agent")["status"]
        return status.get("desiredNumberScheduled") == len(cluster.nodes) and status.get("numberReady") == len(cluster.nodes)

    cluster.wait_for(ready, 30, "DaemonSet agent to be ready on every node", logs=["kube-controller-manager"])
    assert sorted(p["spec"]["nodeName"] for p in pods(cluster, namespace, "agent")) == sorted(cluster.nodes)


def test_claims_of_a_statefulset_and_a_deployment_are_bound(cluster, namespace):
    claim_template = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    apply(
        cluster,
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": pod_template("db"),
                "volumeClaimTemplates": [claim_template],
            },
        },
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **claim_template, "metadata": {"name": "uploads"}},
        deployment("store", volumes=[{"name": "uploads", "persistentVolumeClaim": {"claimName": "uploads"}}]),
    )

    def ready():
        sts = get(cluster, namespace, "statefulset", "db")["status"]
        store = get(cluster, namespace, "deployment", "store")["status"]
        return sts.get("readyReplicas") == 2 and store.get("readyReplicas") == 1

    cluster.wait_for(ready, 60, "StatefulSet db and Deployment store to be ready", logs=["kube-controller-manager", "kwok"])
    claims = {c["metadata"]["name"]: c for c in get(cluster, namespace, "pvc")["items"]}
    assert sorted(claims) == ["data-db-0", "data-db-1", "uploads"]
    for claim in claims.values():
        assert claim["status"]["phase"] == "Bound"
        assert claim["spec"]["storageClassName"] == STORAGE_CLASS  # the default class, given by admission
        volume = json.loads(cluster.kubectl("get", "pv", claim["spec"]["volumeName"], "-o", "json").stdout)
        assert volume["status"]["phase"] == "Bound"
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]


def test_deleting_a_namespace_removes_it_with_its_objects_and_volumes(cluster):
    namespace = f"e2e-doomed-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    apply(
        cluster,
        namespace,
        deployment("web", replicas=2),
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "cache"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
    )
    core = client.CoreV1Api(cluster.api)

    def bound_volume():
        claim = core.read_namespaced_persistent_volume_claim("cache", namespace)
        return claim.status.phase == "Bound" and claim.spec.volume_name

    volume = cluster.wait_for(bound_volume, 30, "claim cache to be bound")
    cluster.wait_for(lambda: len(pods(cluster, namespace, "web")) == 2, 30, "the pods of web")

    cluster.kubectl("delete", "namespace", namespace, "--wait=false")

    def gone():
        try:
            core.read_namespace(namespace)
        except ApiException as error:
            return error.status == 404
        return False

    cluster.wait_for(gone, 60, f"namespace {namespace} to be deleted", logs=["kube-controller-manager"])
    assert not [p for p in core.list_pod_for_all_namespaces().items if p.metadata.namespace == namespace]
    # The released volume is deleted, as a dynamic provisioner's volumes are (reclaim policy Delete).
    cluster.wait_for(lambda: volume not in {v.metadata.name for v in core.list_persistent_volume().items}, 30, f"volume {volume} to be deleted")


def test_foreground_deletion_waits_for_the_owned_objects(cluster, namespace):
    """Argo CD prunes with foreground propagation: the garbage collector deletes what a Deployment owns first."""
    apply(cluster, namespace, deployment("old", replicas=2))
    cluster.wait_for(lambda: len(pods(cluster, namespace, "old")) == 2, 30, "the pods of old")
    cluster.kubectl("delete", "-n", namespace, "deployment", "old", "--cascade=foreground", "--timeout=60s")
    assert get(cluster, namespace, "replicasets", "-l", "app=old")["items"] == []
    cluster.wait_for(lambda: pods(cluster, namespace, "old") == [], 30, "the pods of old to be deleted")


def test_job_pods_complete(cluster, namespace):
    apply(cluster, namespace, {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": IMAGE}]}}},
    })
    def complete():
        job = get(cluster, namespace, "job", "migrate")
        return job if condition(job, "Complete").get("status") == "True" else None

    job = cluster.wait_for(complete, 30, "Job migrate to complete", logs=["kube-controller-manager", "kwok"])
    assert job["status"]["succeeded"] == 1


def test_autoscaler_without_metrics_reports_it(cluster, namespace):
    """As on kind without metrics-server: the controller runs, finds no metrics API and says so."""
    apply(
        cluster,
        namespace,
        deployment("scaled", replicas=1, containers=[{"name": "app", "image": IMAGE, "resources": {"requests": {"cpu": "100m"}}}]),
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "scaled"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
            },
        },
    )
    def judged():
        hpa = get(cluster, namespace, "hpa", "scaled")
        return hpa if condition(hpa, "ScalingActive") else None

    hpa = cluster.wait_for(judged, 60, "the HorizontalPodAutoscaler's conditions", logs=["kube-controller-manager"])
    assert condition(hpa, "AbleToScale")["status"] == "True"
    assert condition(hpa, "ScalingActive")["status"] == "False"
    assert condition(hpa, "ScalingActive")["reason"] == "FailedGetResourceMetric"
    assert get(cluster, namespace, "deployment", "scaled")["spec"]["replicas"] == 1


def test_admission_webhooks_are_not_called(cluster, namespace):
    """Kubeflow ships webhook configurations whose servers cannot run here: they are stored, never called."""
    name = f"e2e-unreachable-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "refuse.e2e.kfgen.dev",
            "clientConfig": {"service": {"namespace": namespace, "name": "nobody", "path": "/validate"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }],
    }))
    try:
        cluster.kubectl("create", "configmap", "settings", "-n", namespace, "--from-literal=a=b")
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name)


def test_a_watched_process_that_exits_fails_the_wait_with_its_log(cluster):
    cluster.run_process("e2e-crasher", ["sh", "-c", "echo 'cannot reach the cluster' >&2; exit 3"])
    with pytest.raises(ProcessExited, match=r"(?s)e2e-crasher exited with code 3.*cannot reach the cluster"):
        cluster.wait_for(lambda: False, 30, "something the crashed process would have done")
    assert cluster.stop_process("e2e-crasher") == 3
    cluster.run_process("e2e-sleeper", ["sleep", "600"], watch=False)
    with pytest.raises(ClusterTimeout, match="waiting for nothing"):
        cluster.wait_for(lambda: False, 0.5, "nothing")
    assert cluster.stop_process("e2e-sleeper") == -15  # SIGTERM to its process group


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.com", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_git_server_takes_pushes_and_serves_clones(tmp_path):
    work, clone = tmp_path / "work", tmp_path / "clone"
    with GitServer(tmp_path / "served") as server:
        server.init_bare("ml-platform.git")
        git("init", "--quiet", "--initial-branch=main", str(work), cwd=tmp_path)
        # A pack larger than git's 1 MiB post buffer (random bytes do not compress), so that it is sent chunked.
        (work / "blob.bin").write_bytes(os.urandom(3 << 20))
        (work / "kustomization.yaml").write_text("resources: []\n")
        git("add", ".", cwd=work)
        git("commit", "--quiet", "-m", "first", cwd=work)
        git("push", "--quiet", server.url("ml-platform.git"), "main", "main:deploy/local", cwd=work)
        assert "sent chunked" in server.log_text()

        git("clone", "--quiet", "--branch=deploy/local", server.url("ml-platform.git"), str(clone), cwd=tmp_path)
        assert (clone / "kustomization.yaml").read_text() == "resources: []\n"
        (clone / "kustomization.yaml").write_text("resources: [app.yaml]\n")
        git("commit", "--quiet", "-am", "second", cwd=clone)
        git("push", "--quiet", "origin", "HEAD:deploy/local", cwd=clone)

        served = git("ls-remote", server.url("ml-platform.git"), cwd=tmp_path)
        heads = dict(reversed(line.split("\t")) for line in served.splitlines())
        assert heads["refs/heads/deploy/local"] == git("rev-parse", "HEAD", cwd=clone).strip()
        assert heads["refs/heads/main"] == git("rev-parse", "HEAD", cwd=work).strip()
        # A fetch by commit id, as controllers do for a pinned revision.
        git("fetch", "--quiet", "origin", heads["refs/heads/main"], cwd=clone)
    with pytest.raises(AssertionError):
        git("ls-remote", server.url("ml-platform.git"), cwd=tmp_path)  # stopped: nothing answers
