"""Flux's real source-controller and kustomize-controller keep a small app in sync with a git repository
served over HTTP, with the settings kfgen's Kustomizations use: `wait: true` (health checks gate Ready)
and `prune: true` (what leaves git leaves the cluster).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Cluster
from e2e.cluster import apply_objects as apply
from e2e.cluster import get_object as get
from e2e.flux import Flux, condition
from e2e.gitserver import GitServer, WorkingRepo

pytestmark = pytest.mark.e2e

TIMEOUT = 120.0


@dataclass
class Stack:
    cluster: Cluster
    git: GitServer
    flux: Flux


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Cluster() as cluster, GitServer(tmp_path_factory.mktemp("git")) as git, Flux(cluster) as flux:
        yield Stack(cluster, git, flux)


def app(
    namespace: str, *, config_map: bool = True, replicas: int = 2, node_selector: dict[str, str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """A kustomization (as kfgen's overlays are) of a Namespace, a ConfigMap and a Deployment."""
    labels = {"app": "web"}
    pod_spec: dict[str, Any] = {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    objects: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    if config_map:
        objects.append({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-settings", "namespace": namespace}, "data": {"greeting": "hello"},
        })
    objects.append({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    })
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["objects.yaml"]}
    return {"app/kustomization.yaml": [kustomization], "app/objects.yaml": objects}


def sync_objects(name: str, url: str, *, timeout: str = "60s") -> list[dict[str, Any]]:
    """A GitRepository on main and a Kustomization of ./app from it, as kfgen generates them."""
    namespace = "flux-system"
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"url": url, "ref": {"branch": "main"}, "interval": "10m"},  # the tests ask for reconciles
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": name},
                "path": "./app",
                "interval": "10m",
                "prune": True,
                "wait": True,
                "timeout": timeout,
            },
        },
    ]


def publish(stack: Stack, repo: WorkingRepo, files: dict[str, list[dict[str, Any]]], message: str) -> str:
    """Pushes, asks source-controller to fetch now, and returns the commit once the GitRepository has it."""
    name = repo.work.name
    commit = repo.push(files, message)
    stack.flux.reconcile("GitRepository", "flux-system", name)
    stack.flux.wait_ready("GitRepository", "flux-system", name, revision=commit, timeout=TIMEOUT)
    return commit


def test_sync_waits_for_health_and_prunes(stack: Stack, tmp_path: Path) -> None:
    cluster, flux = stack.cluster, stack.flux
    namespace = "e2e-flux"
    work = tmp_path / "demo"
    work.mkdir()
    repo = WorkingRepo(stack.git, "demo", work)
    commit = repo.push(app(namespace), "the app")
    apply(cluster, *sync_objects("demo", repo.url))

    kustomization = flux.wait_ready("Kustomization", "flux-system", "demo", revision=commit, timeout=TIMEOUT)
    assert flux.revision(kustomization) == f"main@sha1:{commit}"
    inventory = {entry["id"] for entry in kustomization["status"]["inventory"]["entries"]}
    assert inventory == {
        f"_{namespace}__Namespace",
        f"{namespace}_web-settings__ConfigMap",
        f"{namespace}_web_apps_Deployment",
    }
    config_map = get(cluster, "-n", namespace, "configmap", "web-settings", "--show-managed-fields")
    assert config_map is not None and config_map["data"] == {"greeting": "hello"}
    # Applied server-side by kustomize-controller, labelled as its own.
    assert config_map["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "demo"
    assert "kustomize-controller" in {m["manager"] for m in config_map["metadata"]["managedFields"]}
    # wait: true made Ready mean the Deployment is Available: its pods exist and are Ready on kwok's nodes.
    deployment = get(cluster, "-n", namespace, "deployment", "web")
    assert deployment is not None and deployment["status"].get("readyReplicas") == 2, deployment and deployment["status"]
    pods = json.loads(cluster.kubectl("-n", namespace, "get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert len(pods) == 2

    # A push that removes the ConfigMap: prune deletes it, and leaves the rest.
    commit = publish(stack, repo, app(namespace, config_map=False, replicas=3), "drop the settings, scale up")
    flux.reconcile("Kustomization", "flux-system", "demo")
    kustomization = flux.wait_ready("Kustomization", "flux-system", "demo", revision=commit, timeout=TIMEOUT)
    cluster.wait_for(lambda: get(cluster, "-n", namespace, "configmap", "web-settings") is None, 60, "the ConfigMap pruned")
    assert {entry["id"] for entry in kustomization["status"]["inventory"]["entries"]} == {
        f"_{namespace}__Namespace",
        f"{namespace}_web_apps_Deployment",
    }
    deployment = get(cluster, "-n", namespace, "deployment", "web")
    assert deployment is not None and deployment["status"].get("readyReplicas") == 3, deployment and deployment["status"]


def test_wait_reports_a_deployment_that_never_becomes_ready(stack: Stack, tmp_path: Path) -> None:
    """The other side of wait: true: pods that cannot be scheduled keep the Kustomization not Ready, and
    a fix pushed afterwards makes it Ready again."""
    cluster, flux = stack.cluster, stack.flux
    namespace = "e2e-flux-unready"
    work = tmp_path / "unready"
    work.mkdir()
    repo = WorkingRepo(stack.git, "unready", work)
    commit = repo.push(app(namespace, node_selector={"e2e.kfgen.dev/no-such-node": "true"}), "pods that cannot schedule")
    # 30 s is kustomize-controller's floor: a shorter spec.timeout is raised to it.
    apply(cluster, *sync_objects("unready", repo.url, timeout="30s"))

    def health_check_failed() -> dict[str, Any] | None:
        obj = flux.get("Kustomization", "flux-system", "unready")
        ready = condition(obj, "Ready")
        if ready.get("status") == "False" and commit in (obj.get("status") or {}).get("lastAttemptedRevision", ""):
            return ready
        return None

    ready = cluster.wait_for(health_check_failed, TIMEOUT, "the Kustomization to fail its health check", logs=("kustomize-controller",))
    assert ready["reason"] == "HealthCheckFailed", ready
    assert "Deployment/e2e-flux-unready/web" in ready["message"], ready
    # It was applied nonetheless: the objects are there, the pods pending.
    assert get(cluster, "-n", namespace, "deployment", "web") is not None

    commit = publish(stack, repo, app(namespace), "schedulable pods")
    flux.reconcile("Kustomization", "flux-system", "unready")
    flux.wait_ready("Kustomization", "flux-system", "unready", revision=commit, timeout=TIMEOUT)
