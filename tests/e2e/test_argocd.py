"""Argo CD's real application controller and repo server keep a small app in sync with a git repository
served over HTTP: automated sync with prune, self-heal and server-side apply, as kfgen's Applications use.

The AppProject is the least one that lets an Application without a destination namespace deploy
manifests that name their own namespaces and carry a cluster-scoped Namespace (kfgen's component
Applications are such): see `project()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.argocd import ArgoCD
from e2e.cluster import Cluster
from e2e.cluster import apply_objects as apply
from e2e.cluster import get_object as get
from e2e.gitserver import GitServer, WorkingRepo
from kfgen.catalog import load_catalog
from kfgen.gitops import argocd_cm
from kfgen.spec import load_platform

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[2]
IN_CLUSTER = "https://kubernetes.default.svc"
TIMEOUT = 120.0


@dataclass
class Stack:
    cluster: Cluster
    git: GitServer
    argocd: ArgoCD
    root: Path


@pytest.fixture(scope="module")
def stack(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("git")
    with GitServer(root) as git, ArgoCD(cluster) as argocd:
        yield Stack(cluster, git, argocd, root)


def manifests(namespace: str, *, config_map: bool = True, replicas: int = 2) -> dict[str, list[dict[str, Any]]]:
    labels = {"app": "web"}
    objects: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    if config_map:
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-settings", "namespace": namespace},
                        "data": {"greeting": "hello"}})
    objects.append({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]}},
        },
    })
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["objects.yaml"]}
    # A kustomization, as kfgen's overlays are: the repo server runs kustomize on the path.
    return {"app/kustomization.yaml": [kustomization], "app/objects.yaml": objects}


def project(
    name: str, repo_url: str, namespaces: list[str], *, allow_no_namespace: bool = True, cluster_kinds: tuple[str, ...] = ("Namespace",)
) -> dict[str, Any]:
    """An AppProject for Applications whose manifests name their own namespaces.

    Argo CD checks an Application's destination namespace against the project's destinations even when it
    is empty, so an Application without one needs a destination whose namespace pattern matches the empty
    string: an entry without `namespace` (or `namespace: '*'`, which allows every namespace). Each
    namespaced object is then checked against the destinations with its own namespace, and each
    cluster-scoped object against clusterResourceWhitelist."""
    destinations = [{"server": IN_CLUSTER, "namespace": ns} for ns in namespaces]
    if allow_no_namespace:
        destinations.append({"server": IN_CLUSTER})
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "sourceRepos": [repo_url],
            "destinations": destinations,
            "clusterResourceWhitelist": [{"group": group, "kind": kind} for group, _, kind in (k.rpartition("/") for k in cluster_kinds)],
        },
    }


def application(name: str, project_name: str, repo_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": project_name,
            "source": {"repoURL": repo_url, "targetRevision": "main", "path": "app"},
            "destination": {"server": IN_CLUSTER},  # no namespace: the manifests carry their own
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}, "syncOptions": ["ServerSideApply=true"]},
        },
    }


def deploy(stack: Stack, name: str, tmp_path: Path) -> tuple[WorkingRepo, str]:
    """Pushes the app of `name` (namespace e2e-<name>) and creates its project and Application; returns
    the repo and the commit Argo CD synced, once Synced and Healthy."""
    namespace = f"e2e-{name}"
    repo = WorkingRepo(stack.git, name, tmp_path)
    commit = repo.push(manifests(namespace), "the app")
    apply(stack.cluster, project(name, repo.url, [namespace]), application(name, name, repo.url))
    stack.argocd.wait_for_app(name, revision=commit, timeout=TIMEOUT)
    return repo, namespace


def test_automated_sync_creates_the_objects_server_side(stack: Stack, tmp_path: Path) -> None:
    _, namespace = deploy(stack, "sync", tmp_path)
    app = stack.argocd.application("sync")
    synced = {(r["kind"], r.get("namespace", ""), r["name"]): r["status"] for r in app["status"]["resources"]}
    assert synced == {
        ("Namespace", "", namespace): "Synced",
        ("ConfigMap", namespace, "web-settings"): "Synced",
        ("Deployment", namespace, "web"): "Synced",
    }
    config_map = get(stack.cluster, "-n", namespace, "configmap", "web-settings", "--show-managed-fields")
    assert config_map is not None and config_map["data"] == {"greeting": "hello"}
    # Server-side apply: the controller owns the fields it set through an Apply operation.
    managers = {(m["manager"], m["operation"]) for m in config_map["metadata"]["managedFields"]}
    assert ("argocd-controller", "Apply") in managers, managers
    deployment = get(stack.cluster, "-n", namespace, "deployment", "web")
    assert deployment is not None
    assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
    # Healthy means the Deployment's pods really are Ready (on kwok's nodes), not just that it exists.
    pods = stack.cluster.kubectl("-n", namespace, "get", "pods", "-l", "app=web", "-o", "json")
    assert len(json.loads(pods.stdout)["items"]) == 2


def test_a_push_that_removes_an_object_prunes_it(stack: Stack, tmp_path: Path) -> None:
    repo, namespace = deploy(stack, "prune", tmp_path)
    assert get(stack.cluster, "-n", namespace, "configmap", "web-settings") is not None
    commit = repo.push(manifests(namespace, config_map=False, replicas=3), "drop the settings, scale up")
    stack.argocd.refresh("prune")
    stack.argocd.wait_for_app("prune", revision=commit, timeout=TIMEOUT)
    stack.cluster.wait_for(lambda: get(stack.cluster, "-n", namespace, "configmap", "web-settings") is None, 60, "the ConfigMap pruned")
    stack.cluster.wait_for(
        lambda: ((get(stack.cluster, "-n", namespace, "deployment", "web") or {}).get("status") or {}).get("readyReplicas") == 3,
        60, "3 ready replicas",
    )
    kinds = {r["kind"] for r in stack.argocd.application("prune")["status"]["resources"]}
    assert kinds == {"Namespace", "Deployment"}


def test_hand_edits_and_deletions_are_healed(stack: Stack, tmp_path: Path) -> None:
    _, namespace = deploy(stack, "heal", tmp_path)
    cluster = stack.cluster
    cluster.kubectl("-n", namespace, "patch", "configmap", "web-settings", "--type=merge", "-p", '{"data":{"greeting":"changed by hand"}}')
    cluster.kubectl("-n", namespace, "scale", "deployment", "web", "--replicas=5")

    def healed() -> bool:
        config_map = get(cluster, "-n", namespace, "configmap", "web-settings") or {}
        deployment = get(cluster, "-n", namespace, "deployment", "web") or {}
        return config_map.get("data") == {"greeting": "hello"} and deployment["spec"]["replicas"] == 2

    cluster.wait_for(healed, 60, "the ConfigMap and the replica count restored")
    cluster.kubectl("-n", namespace, "delete", "configmap", "web-settings", "--wait=true")
    cluster.wait_for(lambda: get(cluster, "-n", namespace, "configmap", "web-settings") is not None, 60, "the ConfigMap recreated")
    stack.argocd.wait_for_app("heal", timeout=TIMEOUT)


def test_a_project_without_an_empty_namespace_destination_refuses_the_application(stack: Stack, tmp_path: Path) -> None:
    """Argo CD refuses an Application without a destination namespace when the project lists only named
    namespaces, although every object it deploys is in one of them; adding the empty one admits it."""
    namespace = "e2e-strict"
    repo = WorkingRepo(stack.git, "strict", tmp_path)
    commit = repo.push(manifests(namespace), "the app")
    apply(stack.cluster, project("strict", repo.url, [namespace], allow_no_namespace=False), application("strict", "strict", repo.url))

    def refused() -> str:
        conditions = (stack.argocd.application("strict").get("status") or {}).get("conditions") or []
        return next((c["message"] for c in conditions if c["type"] == "InvalidSpecError"), "")

    message = stack.cluster.wait_for(refused, 60, "the Application refused by its project")
    assert "namespace '' do not match any of the allowed destinations in project 'strict'" in message, message
    assert get(stack.cluster, "namespace", namespace) is None

    apply(stack.cluster, project("strict", repo.url, [namespace]))
    stack.argocd.refresh("strict")
    stack.argocd.wait_for_app("strict", revision=commit, timeout=TIMEOUT)


def test_kfgen_health_customizations_run_in_argocd(stack: Stack, tmp_path: Path) -> None:
    """The argocd-cm that kfgen ships, loaded into the real controller: its Lua health checks run in Argo CD's
    sandbox and gate sync waves as meant. A CRD is Healthy once established; an autoscaler that cannot read
    metrics (no metrics-server here) is Healthy, so the wave after it is applied."""
    platform = load_platform(PROJECT / "platform.yaml", load_catalog(PROJECT / "components"))
    stack.argocd.configure(argocd_cm(platform.gitops)["data"])
    namespace = "e2e-health"

    def wave(number: int, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"].setdefault("annotations", {})["argocd.argoproj.io/sync-wave"] = str(number)
        return obj

    widget_crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.e2e.kfgen.dev"},
        "spec": {
            "group": "e2e.kfgen.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}],
        },
    }
    files = manifests(namespace)
    objects = files["app/objects.yaml"]
    objects[0] = wave(-2, objects[0])
    objects[:] = [*objects, wave(-1, widget_crd), autoscaler,
                  wave(1, {"apiVersion": "e2e.kfgen.dev/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": namespace}, "spec": {}})]
    repo = WorkingRepo(stack.git, "health", tmp_path)
    commit = repo.push(files, "a CRD, an autoscaler without metrics, and a wave after them")
    cluster_kinds = ("Namespace", "apiextensions.k8s.io/CustomResourceDefinition")
    apply(stack.cluster, project("health", repo.url, [namespace], cluster_kinds=cluster_kinds), application("health", "health", repo.url))
    app = stack.argocd.wait_for_app("health", revision=commit, timeout=TIMEOUT)

    health = {(r["kind"], r["name"]): r.get("health") or {} for r in app["status"]["resources"]}
    assert health[("CustomResourceDefinition", "widgets.e2e.kfgen.dev")] == {"status": "Healthy", "message": "established"}
    hpa = health[("HorizontalPodAutoscaler", "web")]
    assert hpa["status"] == "Healthy" and hpa["message"].startswith("no metrics to scale on"), hpa
    assert get(stack.cluster, "-n", namespace, "widgets.e2e.kfgen.dev", "w") is not None
