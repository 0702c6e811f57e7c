"""The test control plane (tests/controlplane.py) is a real API server of the spec's Kubernetes version:
it stores, validates (server-side dry run included) and authorizes objects, serves CRDs with their
schemas, kubectl can use its kubeconfig, and stop() leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from controlplane import ControlPlane, ControlPlaneError
from helpers import shipped_spec


@pytest.fixture(scope="module")
def api(control_plane):
    with control_plane.api_client() as api_client:
        yield api_client


def unique(prefix: str) -> str:
    """The control plane is shared by the session and namespaces are never finalized: names are not reused."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_server_is_the_spec_kubernetes_version(api):
    wanted = str(shipped_spec()["kubernetes"]["version"])
    info = client.VersionApi(api).get_code()
    assert f"{info.major}.{info.minor}" == wanted
    assert info.git_version.startswith(f"v{wanted}."), info.git_version


def test_namespace_and_configmap_are_stored(api):
    core = client.CoreV1Api(api)
    namespace = unique("cp-store")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"answer": "42"}))
    assert core.read_namespaced_config_map("settings", namespace).data == {"answer": "42"}
    assert [c.metadata.name for c in core.list_namespaced_config_map(namespace).items if c.metadata.name == "settings"] == ["settings"]
    # Admission ran: the namespace got its name label.
    assert core.read_namespace(namespace).metadata.labels["kubernetes.io/metadata.name"] == namespace


def deployment(name: str, selector: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "example.com/app:1"}]}},
        },
    }


def test_server_side_dry_run_validates_without_storing(api):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    namespace = unique("cp-dry-run")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    with pytest.raises(ApiException) as rejected:
        apps.create_namespaced_deployment(namespace, deployment("bad", {"app": "a"}, {"app": "b"}), dry_run="All")
    assert rejected.value.status == 422
    status = json.loads(rejected.value.body)
    assert status["reason"] == "Invalid"
    assert "`selector` does not match template `labels`" in status["message"]
    # A valid object passes the dry run, defaulted, and is not stored.
    accepted = apps.create_namespaced_deployment(namespace, deployment("good", {"app": "a"}, {"app": "a"}), dry_run="All")
    assert accepted.spec.replicas == 1 and accepted.spec.strategy.type == "RollingUpdate"
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("good", namespace)
    assert missing.value.status == 404


def test_rbac_is_enforced(control_plane):
    with control_plane.api_client(as_user="alice@example.com") as as_alice:
        with pytest.raises(ApiException) as forbidden:
            client.CoreV1Api(as_alice).list_namespace()
        assert forbidden.value.status == 403
    with control_plane.api_client(as_user="bob@example.com", as_group="system:masters") as as_bob:
        assert client.CoreV1Api(as_bob).list_namespace().items


WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.kfgen.dev"},
    "spec": {
        "group": "test.kfgen.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}, "color": {"type": "string", "enum": ["red", "blue"]}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def wait_established(extensions: client.ApiextensionsV1Api, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        assert time.monotonic() < deadline, f"CRD {name} not Established after {timeout}s: {conditions}"
        time.sleep(0.1)


def test_crd_becomes_established_and_its_schema_is_enforced(api):
    core, extensions, custom = client.CoreV1Api(api), client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    namespace = unique("cp-crd")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    extensions.create_custom_resource_definition(WIDGETS)
    wait_established(extensions, WIDGETS["metadata"]["name"])

    def create(name: str, spec: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        body = {"apiVersion": "test.kfgen.dev/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}
        return custom.create_namespaced_custom_object("test.kfgen.dev", "v1", namespace, "widgets", body, **kwargs)

    assert create("small", {"size": 1, "color": "red"})["spec"] == {"size": 1, "color": "red"}
    assert custom.get_namespaced_custom_object("test.kfgen.dev", "v1", namespace, "widgets", "small")["spec"]["size"] == 1
    for name, spec, complaint in [
        ("zero", {"size": 0}, "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"),
        ("text", {"size": "big"}, 'spec.size: Invalid value: "string": spec.size in body must be of type integer'),
        ("no-size", {"color": "red"}, "spec.size: Required value"),
        ("green", {"size": 2, "color": "green"}, 'spec.color: Unsupported value: "green"'),
    ]:
        with pytest.raises(ApiException) as rejected:
            create(name, spec, dry_run="All")
        assert rejected.value.status == 422, name
        assert complaint in json.loads(rejected.value.body)["message"], name


def test_kubectl_uses_the_kubeconfig(control_plane):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, "--kubeconfig", control_plane.kubeconfig, *args], capture_output=True, text=True, timeout=60)

    result = run("auth", "can-i", "*", "*")
    assert (result.returncode, result.stdout.strip()) == (0, "yes"), result.stderr
    result = run("get", "namespace", "kube-system", "-o", "name")
    assert result.stdout.strip() == "namespace/kube-system", result.stderr


def test_stop_leaves_no_process_or_file(control_plane):
    plane = ControlPlane().start()
    pids = [p.pid for p in plane._processes.values()]
    folder = plane.dir
    assert plane.request("/readyz")[0] == 200
    plane.stop()
    assert folder is not None and not folder.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
    plane.stop()  # a second stop is harmless


def test_missing_binary_says_how_to_build_it(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("KFGEN_ETCD", str(tmp_path / "no-etcd"))
    with pytest.raises(ControlPlaneError, match=r"make controlplane"):
        ControlPlane().start()
