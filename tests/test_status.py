"""kfgen status against a real API server (tests/controlplane.py) holding the real Argo CD and Flux CRDs from the
source cache. The controllers' objects carry the statuses the controllers write; the verdicts, the exit codes and
the JSON are checked: everything synced and healthy on the latest publish is fine, and each way of not being so
(out of sync, degraded, a failed sync, an old revision, a missing object, a component left in the cluster after
leaving the spec, a Kustomization not ready or not reconciled at its latest generation) is named."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import TempProject, shipped_spec
from kfgen.status import commit_of

CACHE = Path(os.environ["KFGEN_SOURCE_CACHE"].split(os.pathsep)[0]) / "github.com"
CRDS = [CACHE / "argoproj/argo-cd/v3.5.1/manifests/crds/application-crd.yaml",
        CACHE / "fluxcd/kustomize-controller/v1.9.4/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        CACHE / "fluxcd/source-controller/v1.9.1/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml"]
ARGO = ("argoproj.io", "v1alpha1", "applications")
KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
GIT_REPOSITORY = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
OLD = "0123456789abcdef0123456789abcdef01234567"
WHEN = "2026-12-01T10:00:00Z"
LEFT_OUT = "katib"  # disabled in local by the test spec; an object for it is left over, not wanted


def kubectl(kubeconfig: str, *args: str) -> str:
    result = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def cluster(control_plane):
    """The control plane with the controllers' CRDs (server-side: Argo CD's exceeds the client-side annotation limit)."""
    for crd in CRDS:
        kubectl(control_plane.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl(control_plane.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/applications.argoproj.io", "crd/kustomizations.kustomize.toolkit.fluxcd.io", "crd/gitrepositories.source.toolkit.fluxcd.io")
    from kubernetes import client

    return control_plane, client.CustomObjectsApi(control_plane.api_client())


def project_for(root: Path, engine: str, namespace: str) -> tuple[TempProject, str]:
    """A project whose local environment leaves LEFT_OUT out, in git with a deploy branch; returns it and the branch head."""
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"] = {"engine": engine, "repoURL": "https://git.example.com/ml-platform.git", "namespace": namespace}
    next(e for e in spec["environments"] if e["name"] == "local").setdefault("components", {})[LEFT_OUT] = {"enabled": False}
    project = TempProject(root, spec)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "platform"], ["branch", "deploy/local"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, env=env)
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "deploy/local"], check=True, capture_output=True, text=True).stdout.strip()
    return project, head


def create_namespace(control_plane, name: str) -> None:
    kubectl(control_plane.kubeconfig, "create", "namespace", name)


def labels(component: str | None) -> dict[str, str]:
    found = {"app.kubernetes.io/managed-by": "kfgen", "kfgen.dev/environment": "local"}
    if component:
        found["kfgen.dev/component"] = component
    return found


def status(project: TempProject, kubeconfig: str, *extra: str) -> tuple[int, dict[str, Any]]:
    result = project.kfgen("--output", "json", "status", "--env", "local", "--kubeconfig", kubeconfig, *extra)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["component"] or o["name"]: o for o in report["environments"][0]["objects"]}


# ---- Argo CD


def application(name: str, component: str | None, namespace: str, revision: str, sync: str = "Synced", health: str = "Healthy",
                operation: dict[str, Any] | None = None, resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An Application as the application controller leaves it after a sync."""
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": namespace, "labels": labels(component)},
        "spec": {"project": "ml-platform-local", "destination": {"server": "https://kubernetes.default.svc", "namespace": "kubeflow"},
                 "source": {"repoURL": "https://git.example.com/ml-platform.git", "targetRevision": "deploy/local",
                            "path": f"overlays/local/{component}" if component else "gitops/local/apps"}},
        "status": {
            "sync": {"status": sync, "revision": revision},
            "health": {"status": health},
            "operationState": operation or {"phase": "Succeeded", "message": "successfully synced (all tasks run)", "startedAt": WHEN,
                                            "finishedAt": WHEN, "operation": {"sync": {"revision": revision}}},
            "resources": resources or [],
            "reconciledAt": WHEN,
        },
    }


def test_argocd_applications_synced_then_each_kind_of_trouble(cluster, tmp_path):
    control_plane, api = cluster
    namespace = "status-argocd"
    create_namespace(control_plane, namespace)
    project, published = project_for(tmp_path / "project", "argocd", namespace)
    components = [p.name for p in project.plan().environment("local").components]
    assert LEFT_OUT not in components
    api.create_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], application("ml-platform-local", None, namespace, published))
    for name in components:
        api.create_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], application(f"local-{name}", name, namespace, published))

    code, report = status(project, control_plane.kubeconfig)
    assert code == 0 and report["ok"] is True
    env = report["environments"][0]
    assert (env["engine"], env["namespace"], env["branch"], env["published"]) == ("argocd", namespace, "deploy/local", published)
    objects = by_name(report)
    assert set(objects) == {*components, "ml-platform-local"}
    assert all(o["ok"] and o["sync"] == "Synced" and o["health"] == "Healthy" and o["revision"] == published for o in objects.values())

    def replace(name: str, component: str, **status: Any) -> None:
        current = api.get_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], name)
        current["status"] = application(name, component, namespace, **status)["status"]
        api.replace_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], name, current)

    drifted = [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "kubeflow", "name": "jupyter-web-app-deployment",
                "status": "OutOfSync"}]
    replace("local-jupyter-web-app", "jupyter-web-app", revision=published, sync="OutOfSync", resources=drifted)
    refused = "one or more objects failed to apply, reason: Notebook.kubeflow.org \"x\" is invalid: spec.template: Required value"
    replace("local-pipelines", "pipelines", revision=published, health="Degraded",
            operation={"phase": "Failed", "message": refused, "startedAt": WHEN, "operation": {"sync": {"revision": published}}})
    replace("local-dex", "dex", revision=OLD)
    # A sync that failed at an earlier revision, then a revert to what is live: synced with no new operation.
    replace("local-central-dashboard", "central-dashboard", revision=published,
            operation={"phase": "Failed", "message": refused, "startedAt": WHEN, "operation": {"sync": {"revision": OLD}}})
    api.delete_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], "local-volumes-web-app")
    api.create_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], application(f"local-{LEFT_OUT}", LEFT_OUT, namespace, published))
    api.delete_namespaced_custom_object(*ARGO[:2], namespace, ARGO[2], "ml-platform-local")

    code, report = status(project, control_plane.kubeconfig)
    assert code == 1 and report["ok"] is False and report["environments"][0]["ok"] is False
    objects = by_name(report)
    assert objects["jupyter-web-app"]["problems"] == ["sync OutOfSync (Deployment kubeflow/jupyter-web-app-deployment)"]
    assert objects["pipelines"]["problems"] == ["health Degraded", f"last sync failed: {refused}"]
    assert objects["pipelines"]["message"] == refused
    assert objects["dex"]["problems"] == [f"on revision {OLD[:12]}, not the latest publish {published[:12]}"]
    assert objects["volumes-web-app"]["found"] is False
    assert objects["volumes-web-app"]["problems"] == [f"no Application labelled kfgen.dev/component=volumes-web-app in namespace {namespace}"]
    assert objects[LEFT_OUT]["problems"] == [f"component {LEFT_OUT} is not enabled in local: not pruned yet"]
    assert objects["ml-platform-local"]["found"] is False and "kubectl apply -k gitops/local" in objects["ml-platform-local"]["problems"][0]
    fine = {name for name, o in objects.items() if o["ok"]}
    assert fine == set(components) - {"jupyter-web-app", "pipelines", "dex", "volumes-web-app"}

    text = project.kfgen("status", "--env", "local", "--kubeconfig", control_plane.kubeconfig)
    assert text.returncode == 1
    assert refused in text.stdout and f"status local: {len(fine)} of {len(objects)} objects" in text.stdout


# ---- Flux


def flux_objects(api, namespace: str, components: list[str]) -> None:
    api.create_namespaced_custom_object(*GIT_REPOSITORY[:2], namespace, GIT_REPOSITORY[2], {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "ml-platform-local", "namespace": namespace, "labels": labels(None)},
        "spec": {"interval": "1m", "url": "https://git.example.com/ml-platform.git", "ref": {"branch": "deploy/local"}}})
    for name, component in [("ml-platform-local", None)] + [(f"local-{c}", c) for c in components]:
        api.create_namespaced_custom_object(*KUSTOMIZATION[:2], namespace, KUSTOMIZATION[2], {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace, "labels": labels(component)},
            "spec": {"interval": "10m", "prune": True, "wait": True,
                     "path": f"./overlays/local/{component}" if component else "./gitops/local/components",
                     "sourceRef": {"kind": "GitRepository", "name": "ml-platform-local"}}})


def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": WHEN}


def write_status(api, resource: tuple[str, str, str], namespace: str, name: str, status: dict[str, Any], generation: int | None = None) -> None:
    """What a Flux controller does: the status subresource, observedGeneration the generation it reconciled."""
    current = api.get_namespaced_custom_object(*resource[:2], namespace, resource[2], name)
    current["status"] = {"observedGeneration": generation or current["metadata"]["generation"], **status}
    api.replace_namespaced_custom_object_status(*resource[:2], namespace, resource[2], name, current)


def applied(revision: str) -> dict[str, Any]:
    return {"conditions": [condition("Ready", "True", "ReconciliationSucceeded", f"Applied revision: {revision}"),
                           condition("Healthy", "True", "Succeeded", "Health check passed")],
            "lastAppliedRevision": revision, "lastAttemptedRevision": revision}


def test_flux_kustomizations_ready_then_each_kind_of_trouble(cluster, tmp_path):
    control_plane, api = cluster
    namespace = "status-flux"
    create_namespace(control_plane, namespace)
    project, published = project_for(tmp_path / "project", "flux", namespace)
    components = [p.name for p in project.plan().environment("local").components]
    flux_objects(api, namespace, components)
    revision = f"deploy/local@sha1:{published}"

    # Created, not reconciled yet: nothing is ready.
    code, report = status(project, control_plane.kubeconfig)
    assert code == 1
    assert all("its latest spec is not reconciled yet" in o["problems"] for o in by_name(report).values())

    write_status(api, GIT_REPOSITORY, namespace, "ml-platform-local", {
        "conditions": [condition("Ready", "True", "Succeeded", f"stored artifact for revision '{revision}'")],
        "artifact": {"path": "x.tar.gz", "url": "http://source-controller/x.tar.gz", "revision": revision, "digest": "sha256:" + "0" * 64,
                     "lastUpdateTime": WHEN}})
    for name in ["ml-platform-local"] + [f"local-{c}" for c in components]:
        write_status(api, KUSTOMIZATION, namespace, name, applied(revision))
    code, report = status(project, control_plane.kubeconfig)
    assert code == 0 and report["ok"], report
    objects = report["environments"][0]["objects"]
    assert sorted(o["kind"] for o in objects if not o["component"]) == ["GitRepository", "Kustomization"]
    assert {o["component"] for o in objects if o["component"]} == set(components)
    assert all(o["revision"] == revision and commit_of(o["revision"]) == published for o in objects)
    assert {o["sync"] for o in objects if o["kind"] == "Kustomization"} == {"True (ReconciliationSucceeded)"}
    assert [o["sync"] for o in objects if o["kind"] == "GitRepository"] == ["True (Succeeded)"]

    failed = "Notebook/kubeflow/x dry-run failed (Invalid): spec.template: Required value"
    write_status(api, KUSTOMIZATION, namespace, "local-pipelines", {
        "conditions": [condition("Ready", "False", "ReconciliationFailed", failed)],
        "lastAppliedRevision": revision, "lastAttemptedRevision": revision})
    write_status(api, KUSTOMIZATION, namespace, "local-dex", applied(f"deploy/local@sha1:{OLD}"))
    # A changed spec the controller has not reconciled yet: its generation moves past the status's.
    api.patch_namespaced_custom_object(*KUSTOMIZATION[:2], namespace, KUSTOMIZATION[2], "local-istio", {"spec": {"timeout": "7m"}})
    api.delete_namespaced_custom_object(*KUSTOMIZATION[:2], namespace, KUSTOMIZATION[2], "local-trainer")

    code, report = status(project, control_plane.kubeconfig)
    assert code == 1 and report["ok"] is False
    found = by_name(report)
    assert found["pipelines"]["problems"] == ["not ready (ReconciliationFailed)"] and found["pipelines"]["message"] == failed
    assert found["dex"]["problems"] == [f"on revision {OLD[:12]}, not the latest publish {published[:12]}"]
    assert found["istio"]["problems"] == ["its latest spec is not reconciled yet"]
    assert found["trainer"]["found"] is False
    assert {name for name, o in found.items() if not o["ok"]} == {"pipelines", "dex", "istio", "trainer"}


def test_unreachable_cluster_is_exit_1(tmp_path):
    project, _ = project_for(tmp_path / "project", "argocd", "argocd")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "x"}}], "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}]}))
    result = project.kfgen("status", "--env", "local", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 1 and "cannot reach the API server" in result.stderr, result.stderr
