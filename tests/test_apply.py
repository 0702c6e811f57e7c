"""A real API server (kube-apiserver and etcd, built by `make controlplane`): the `local` environment
passes server-side dry run, `kfgen apply` applies it in one pass, a second apply changes nothing,
a component taken out of the spec is pruned exactly, and a rejected object is reported by name."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from helpers import TempProject, shipped_spec
from kfgen.apply import Cluster, apply_environment, read_inventory
from kfgen.objectkey import ObjectKey

# A leaf component (nothing depends on it), so the spec stays valid without it.
REMOVED = "tensorboards-web-app"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> TempProject:
    project = TempProject(tmp_path_factory.mktemp("apply") / "project")
    project.vendor()
    project.render()
    return project


def _apply(project: TempProject, kubeconfig: str, *extra: str) -> dict[str, Any]:
    result = project.kfgen("--output", "json", "apply", "--env", "local", "--kubeconfig", kubeconfig, "--no-wait-workloads", *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_local_environment_passes_server_side_dry_run(project, control_plane):
    result = project.kfgen("check", "--env", "local", "--server", control_plane.kubeconfig)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "server local: " in result.stdout and " 0 rejected" in result.stdout
    assert "the API server accepts every object" in result.stdout


def test_apply_then_apply_again_changes_nothing(project, control_plane):
    first = _apply(project, control_plane.kubeconfig)
    build = project.build("local")
    assert first["counts"]["created"] + first["counts"]["unchanged"] + first["counts"]["configured"] > 600
    assert first["rejections"] == []
    # No workload runs on the test control plane, so nothing could answer a webhook: they are left out, and said so.
    webhooks = {o["metadata"]["name"] for o in build.objects if o["kind"].endswith("WebhookConfiguration")}
    assert set(first["skippedWebhooks"]) == webhooks
    second = _apply(project, control_plane.kubeconfig)
    assert second["changes"] == 0, second["counts"]
    assert second["counts"]["unchanged"] == first["counts"]["created"] + first["counts"]["configured"] + first["counts"]["unchanged"]
    # What was applied is labelled with its environment and component.
    cluster = Cluster(control_plane.kubeconfig)
    deployment = cluster.get(ObjectKey.from_api_version("apps/v1", "Deployment", "kubeflow", "tensorboards-web-app-deployment"))
    assert deployment["metadata"]["labels"]["kfgen.dev/component"] == REMOVED
    assert deployment["metadata"]["labels"]["kfgen.dev/environment"] == "local"
    secret = cluster.get(ObjectKey.from_api_version("v1", "Secret", "kubeflow", "katib-mysql-secrets"))  # the local backend's, applied with katib
    assert secret is not None and secret["metadata"]["labels"]["kfgen.dev/component"] == "katib"


def test_component_left_out_of_the_spec_is_pruned_exactly(project, control_plane):
    cluster = Cluster(control_plane.kubeconfig)
    before = read_inventory(cluster, "local")
    owned = {ref for ref, component in before.items() if component == REMOVED}
    assert owned
    spec = copy.deepcopy(shipped_spec())
    spec.setdefault("components", {})[REMOVED] = {"enabled": False}
    project.write_spec(spec)
    project.render()
    result = _apply(project, control_plane.kubeconfig)
    assert result["counts"]["pruned"] == len(owned)
    assert result["counts"]["created"] == 0 and result["rejections"] == []
    after = read_inventory(cluster, "local")
    assert set(before) - set(after) == owned
    for ref in owned:
        assert cluster.get(ref) is None, ref
    again = _apply(project, control_plane.kubeconfig)
    assert again["changes"] == 0


def test_rejected_object_is_reported_by_name(project, control_plane):
    build = project.build("local")
    runtime = copy.deepcopy(next(o for c in build.components for o in c.objects if o["kind"] == "ClusterTrainingRuntime"))
    runtime["metadata"] = {"name": "torch-and-mpi"}
    # The CRD's validation rule: "Only one of the policy can be configured".
    runtime["spec"].setdefault("mlPolicy", {}).update({"torch": {}, "mpi": {}})
    report = apply_environment(Cluster(control_plane.kubeconfig), build, {"trainer": [runtime]}, dry_run=True)
    [rejection] = report.rejections
    assert (rejection.component, rejection.ref.kind, rejection.ref.name) == ("trainer", "ClusterTrainingRuntime", "torch-and-mpi")
    assert "Only one of the policy can be configured" in rejection.message
    assert rejection.format().startswith("local/trainer: ClusterTrainingRuntime torch-and-mpi")
    # Through the CLI too: a planted object in an overlay is named in check --server's output.
    overlay = project.root / "overlays" / "local" / "trainer"
    (overlay / "planted.yaml").write_text(yaml.safe_dump(runtime))
    kustomization = yaml.safe_load((overlay / "kustomization.yaml").read_text())
    kustomization["resources"].append("planted.yaml")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = project.kfgen("check", "--env", "local", "--server", control_plane.kubeconfig)
    assert result.returncode == 1
    assert "server: local/trainer: ClusterTrainingRuntime torch-and-mpi (trainer.kubeflow.org/v1alpha1): 422" in result.stdout
    project.render()  # put the overlay back
