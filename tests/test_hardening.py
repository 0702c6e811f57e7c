"""Hardening: every environment passes every policy, workloads get limits and no unused tokens,
mutual TLS is STRICT with the exceptions its callers need, tenants are fenced, and an upstream change
under a hardening patch fails the build instead of being patched blindly."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import PROJECT, shipped_spec
from kfgen.catalog import ContainerResources, HardenedWorkload, Hardening, NarrowedRule, load_catalog
from kfgen.policies import environment_settings, find_conftest, load_exceptions, run_policies, unused_exceptions
from kfgen.render import hardening_patches
from kfgen.spec import load_platform

RELEASE = "26.03"
ENVIRONMENTS = ("local", "staging", "prod")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
# Pods whose service account no role binds, that still mount a token, and why.
KEEPS_TOKEN = {
    ("oauth2-proxy", "oauth2-proxy"): "fetches the cluster's JWKS to accept machine tokens; some clusters serve it only to authenticated callers",
}


def _objects(built, env: str) -> list[dict[str, Any]]:
    return [o for c in built(RELEASE, env).components for o in c.objects]


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def test_every_environment_passes_every_policy_and_every_exception_is_used(built):
    conftest = find_conftest(PROJECT)
    exceptions = load_exceptions(PROJECT / "policies")
    platform = load_platform(PROJECT / "platform.yaml", load_catalog(PROJECT / "components"))
    reports = []
    for env in ENVIRONMENTS:
        objects = {c.name: c.objects for c in built(RELEASE, env).components}
        reports.append(run_policies(conftest, PROJECT / "policies", env, environment_settings(platform.environment(env)), objects, exceptions))
    assert [v.format() for r in reports for v in r.violations] == []
    assert unused_exceptions(exceptions, reports) == []
    assert all(e.reason.strip() for e in exceptions)


@pytest.mark.parametrize("release", ["26.03", "v1.11.0"])
def test_prod_containers_all_have_requests_and_limits(built, release):
    # Every container of the production stage: CPU limits too.
    objects = [o for c in built(release, "prod").components for o in c.objects]
    missing = [(o["metadata"]["name"], c["name"]) for o in objects if o["kind"] in WORKLOADS
               for c in _pod_spec(o)["containers"]
               if not all((c.get("resources") or {}).get(part, {}).get(res) for part, res in
                          (("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")))]
    assert missing == []


def test_catalog_hardening_lands_on_the_objects_it_names(built):
    catalog = load_catalog(PROJECT / "components")
    # local: the environment that keeps Pipelines' in-cluster MySQL and SeaweedFS, hardened too
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in _objects(built, "local")}
    checked = 0
    for component in catalog.components.values():
        for workload in component.hardening.workloads:
            obj = by_name[(workload.kind, workload.name)]
            if workload.api_access is False:
                assert _pod_spec(obj)["automountServiceAccountToken"] is False, workload.name
            for container in workload.containers:
                assert _pod_spec(obj)["containers"][container.index]["resources"] == container.resources
            checked += 1
        for rule in component.hardening.rbac:
            obj = by_name[(rule.kind, rule.name)]
            if rule.api_groups:
                assert obj["rules"][rule.rule]["apiGroups"] == list(rule.api_groups)
            checked += 1
    assert checked >= 15


def test_pods_whose_service_account_has_no_role_mount_no_token(built):
    objects = _objects(built, "prod")
    bound = {(s.get("namespace") or o["metadata"].get("namespace"), s["name"])
             for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
             for s in o.get("subjects") or [] if s.get("kind") == "ServiceAccount"}
    mounting = []
    for obj in objects:
        if obj["kind"] not in WORKLOADS:
            continue
        spec = _pod_spec(obj)
        namespace = obj["metadata"]["namespace"]
        account = spec.get("serviceAccountName") or "default"
        if (namespace, account) not in bound and spec.get("automountServiceAccountToken") is not False:
            mounting.append((namespace, obj["metadata"]["name"]))
    assert sorted(mounting) == sorted(KEEPS_TOKEN)


def _injected(obj: dict[str, Any], namespaces: dict[str, dict[str, str]]) -> bool:
    template = obj["spec"]["template"]["metadata"]
    choice = (template.get("annotations") or {}).get("sidecar.istio.io/inject") or (template.get("labels") or {}).get("sidecar.istio.io/inject")
    if choice is not None:
        return choice == "true"
    return namespaces.get(obj["metadata"]["namespace"], {}).get("istio-injection") == "enabled"


def _plain_text_allowed(policies: list[dict[str, Any]], namespace: str, labels: dict[str, str], port: int) -> bool:
    for policy in policies:
        if policy["metadata"]["namespace"] != namespace:
            continue
        selector = (policy["spec"].get("selector") or {}).get("matchLabels") or {}
        if all(labels.get(k) == v for k, v in selector.items()):
            level = (policy["spec"].get("portLevelMtls") or {}).get(str(port)) or policy["spec"].get("mtls") or {}
            if level.get("mode") in ("PERMISSIVE", "DISABLE"):
                return True
    return False


def test_mesh_is_strict_and_every_webhook_behind_a_sidecar_accepts_the_api_server(built):
    objects = _objects(built, "prod")
    policies = [o for o in objects if o["kind"] == "PeerAuthentication"]
    assert {"namespace": "istio-system", "name": "default", "mode": "STRICT"} in [
        {"namespace": p["metadata"]["namespace"], "name": p["metadata"]["name"], "mode": (p["spec"].get("mtls") or {}).get("mode")}
        for p in policies]
    namespaces = {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in objects if o["kind"] == "Namespace"}
    services = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects if o["kind"] == "Service"}
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    refused, behind_sidecars = [], 0
    for config in (o for o in objects if o["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")):
        for webhook in config.get("webhooks") or []:
            target = webhook["clientConfig"].get("service")
            if not target:
                continue
            service = services[(target["namespace"], target["name"])]
            port = next(p for p in service["spec"]["ports"] if p["port"] == target.get("port", 443))
            for workload in workloads:
                labels = workload["spec"]["template"]["metadata"].get("labels") or {}
                selector = service["spec"].get("selector") or {}
                if workload["metadata"]["namespace"] != target["namespace"] or not selector or \
                        any(labels.get(k) != v for k, v in selector.items()) or not _injected(workload, namespaces):
                    continue
                container_ports = {p.get("name"): p["containerPort"] for c in _pod_spec(workload)["containers"] for p in c.get("ports") or []}
                target_port = port.get("targetPort", port["port"])
                container_port = container_ports.get(target_port, target_port)
                behind_sidecars += 1
                if not _plain_text_allowed(policies, target["namespace"], labels, container_port):
                    refused.append(f"{config['metadata']['name']} -> {workload['metadata']['name']}:{container_port}")
    assert behind_sidecars >= 5
    assert refused == []


def test_permissive_mesh_renders_no_port_exceptions(make_project):
    spec = shipped_spec()
    spec["components"].setdefault("istio", {}).setdefault("settings", {})["mtls"] = "PERMISSIVE"
    project = make_project(spec)
    project.render()
    assert not list(project.root.glob("overlays/*/*/mesh-permissive-ports.yaml"))
    mesh = yaml.safe_load((project.root / "overlays/prod/istio/peer-authentication.yaml").read_text())
    assert mesh["spec"]["mtls"]["mode"] == "PERMISSIVE"


def test_tenant_namespaces_enforce_baseline_and_admit_only_the_platform(built):
    objects = _objects(built, "prod")
    profiles = [o["metadata"]["name"] for o in objects if o["kind"] == "Profile"]
    assert profiles
    for name in profiles:
        namespace = next(o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == name)
        labels = namespace["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        fences = [o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == name]
        assert [f["spec"]["podSelector"] for f in fences] == [{}]
        sources = fences[0]["spec"]["ingress"][0]["from"]
        allowed = {s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources if "namespaceSelector" in s}
        assert allowed == {"istio-system", "kubeflow", "knative-serving"}
        assert {"podSelector": {}} in sources


ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "viewer"},
        "rules": [{"apiGroups": ["*"], "resources": ["deployments"], "verbs": ["get"]}]}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db"},
              "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": {
                  "metadata": {"labels": {"app": "db"}},
                  "spec": {"containers": [{"name": "db", "image": "mysql:8"}, {"name": "proxy", "image": "p:1"}]}}}}


def _kustomize_with(hardening: Hardening, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "objects.yaml").write_text(yaml.safe_dump_all([ROLE, DEPLOYMENT]))
    patches = []
    for name, operations, target in hardening_patches(hardening):
        (folder / name).write_text(yaml.safe_dump(operations))
        patches.append({"path": name, "target": target})
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["objects.yaml"], "patches": patches}))
    return subprocess.run([str(PROJECT / ".tools/bin/kustomize"), "build", str(folder)], capture_output=True, text=True)


@pytest.mark.parametrize("container_name, expect, applies", [
    ("proxy", {"apiGroups": ["*"], "resources": ["deployments"]}, True),
    ("sidecar", {"apiGroups": ["*"], "resources": ["deployments"]}, False),  # upstream renamed the container
    ("proxy", {"apiGroups": ["*"], "resources": ["deployments", "pods"]}, False),  # upstream changed the rule
])
def test_hardening_patch_applies_only_to_what_it_expects(tmp_path, container_name, expect, applies):
    hardening = Hardening(
        workloads=(HardenedWorkload("Deployment", "db", False, (ContainerResources(1, container_name, {"limits": {"memory": "64Mi"}}),)),),
        rbac=(NarrowedRule("ClusterRole", "viewer", 0, expect, ("apps",), (), "deployments live in apps"),),
    )
    result = _kustomize_with(hardening, tmp_path / "kustomization")
    assert (result.returncode == 0) is applies, result.stderr
    if applies:
        role, deployment = list(yaml.safe_load_all(result.stdout))
        assert role["rules"][0]["apiGroups"] == ["apps"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert [c["name"] for c in pod["containers"]] == ["db", "proxy"]  # order kept: the first stays the default container
        assert pod["containers"][1]["resources"] == {"limits": {"memory": "64Mi"}}
    else:
        assert "test failed" in result.stderr


def test_the_shipped_spec_keeps_strict_mesh_by_default():
    catalog = load_catalog(PROJECT / "components")
    assert catalog.components["istio"].defaults()["mtls"] == "STRICT"
    assert "mtls" not in copy.deepcopy(shipped_spec()).get("components", {}).get("istio", {}).get("settings", {})


def test_platform_namespaces_enforce_restricted_and_isolate_their_pods(built):
    objects = _objects(built, "prod")
    platform = [o["metadata"] for o in objects if o["kind"] == "Namespace"
                and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of") != "kubeflow-profile"]
    assert len(platform) >= 6
    fenced = {o["metadata"]["namespace"] for o in objects if o["kind"] == "NetworkPolicy" and o["spec"].get("podSelector") == {}}
    for metadata in platform:
        assert metadata["labels"].get("pod-security.kubernetes.io/enforce") == "restricted", metadata["name"]
        assert metadata["name"] in fenced, f"no NetworkPolicy selects every pod of {metadata['name']}"
