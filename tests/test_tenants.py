"""Tenants as config: each profile of the spec becomes a Profile with its quota, its namespace, and the
contributor bindings Kubeflow's access management would create, in the environments it names."""

from __future__ import annotations

from typing import Any

from kfgen.gitops import argocd_project


def _tenants(built, env: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    build = built("26.03", env)
    [tenants] = [c for c in build.components if c.name == "tenants"]
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in tenants.objects}


def test_profile_gets_quota_namespace_and_contributor_bindings(built):
    objects = _tenants(built, "staging")
    profile = objects[("Profile", "", "ml-research")]
    assert profile["spec"]["owner"] == {"kind": "User", "name": "ada@example.com"}
    assert profile["spec"]["resourceQuotaSpec"]["hard"] == {
        "requests.cpu": "16", "requests.memory": "64Gi", "requests.nvidia.com/gpu": "2", "requests.storage": "500Gi"}
    namespace = objects[("Namespace", "", "ml-research")]
    assert namespace["metadata"]["annotations"]["owner"] == "ada@example.com"  # the profile controller adopts it

    binding = objects[("RoleBinding", "ml-research", "user-alan-example-com-clusterrole-edit")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubeflow-edit"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alan@example.com"}]
    assert binding["metadata"]["annotations"] == {"role": "edit", "user": "alan@example.com"}
    policy = objects[("AuthorizationPolicy", "ml-research", "user-alan-example-com-clusterrole-edit")]
    [rule] = policy["spec"]["rules"]
    assert rule["when"] == [{"key": "request.headers[kubeflow-userid]", "values": ["alan@example.com"]}]
    assert rule["from"][0]["source"]["principals"] == ["cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"]

    group = objects[("RoleBinding", "ml-research", "group-ml-reviewers-clusterrole-view")]
    assert group["subjects"][0]["kind"] == "Group" and group["roleRef"]["name"] == "kubeflow-view"
    group_policy = objects[("AuthorizationPolicy", "ml-research", "group-ml-reviewers-clusterrole-view")]
    assert group_policy["spec"]["rules"][0]["when"] == [{"key": "request.auth.claims[groups]", "values": ["ml-reviewers"]}]


def test_profiles_follow_their_environments_and_overrides(built):
    local = _tenants(built, "local")
    prod = _tenants(built, "prod")
    assert ("Profile", "", "ml-serving") not in local  # only in staging and prod
    assert ("Profile", "", "ml-serving") in prod
    # prod raises ml-research's quota; its contributors stay.
    assert prod[("Profile", "", "ml-research")]["spec"]["resourceQuotaSpec"]["hard"]["requests.nvidia.com/gpu"] == "8"
    assert ("RoleBinding", "ml-research", "user-alan-example-com-clusterrole-edit") in prod
    assert ("RoleBinding", "ml-serving", "user-ada-example-com-clusterrole-view") in prod


def test_kubeflow_roles_exist_for_every_binding(built):
    objects = built("26.03", "prod").objects
    cluster_roles = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"}
    bound = {o["roleRef"]["name"] for o in objects if o["kind"] == "RoleBinding" and o["metadata"]["name"].endswith(("-edit", "-view"))
             and o["metadata"]["name"].startswith(("user-", "group-"))}
    assert bound and bound <= cluster_roles


def test_gitops_project_may_deploy_into_profile_namespaces(built):
    built("26.03", "prod")
    project = built.projects[("26.03", False)]
    plan = project.plan()
    destinations = {d["namespace"] for d in argocd_project(plan, plan.environment("prod"))["spec"]["destinations"]}
    assert {"ml-research", "ml-serving"} <= destinations
    assert "ml-serving" not in {d["namespace"] for d in argocd_project(plan, plan.environment("local"))["spec"]["destinations"]}
