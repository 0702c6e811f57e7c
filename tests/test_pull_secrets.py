"""An environment's registry login (imagePullSecret): prod names one for its mirror; every account and
workload of the platform and the accounts of its profiles pull with it, and the secrets backend puts the
Secret in every namespace they run in. Environments without one are as upstream."""

from __future__ import annotations

import json
from typing import Any

from helpers import shipped_spec
from kfgen.credentials import PULL_SECRET_KEY, PULL_SECRET_TYPE

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
PROFILE_ACCOUNTS = {"default", "default-editor", "default-viewer"}


def _environment(name: str) -> dict[str, Any]:
    return next(e for e in shipped_spec()["environments"] if e["name"] == name)


def test_prod_pulls_every_image_with_its_registry_login(built):
    login = _environment("prod")["imagePullSecret"]
    profiles = {p["name"] for p in shipped_spec()["profiles"]}
    objects = built("26.03", "prod").objects
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"]
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    assert len(accounts) > 40 and len(workloads) > 40
    for obj in accounts:
        assert obj["imagePullSecrets"] == [{"name": login}], obj["metadata"]
    for obj in workloads:
        assert obj["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": login}], obj["metadata"]
    for profile in profiles:
        assert {o["metadata"]["name"] for o in accounts if o["metadata"].get("namespace") == profile} == PROFILE_ACCOUNTS
    # The login in every namespace where a pod of the platform or of a profile runs, as a registry login
    logins = {o["metadata"]["namespace"]: o for o in objects if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == login}
    assert {o["metadata"]["namespace"] for o in workloads} | profiles <= set(logins)
    for secret in logins.values():
        assert secret["spec"]["target"]["template"]["type"] == PULL_SECRET_TYPE
        assert [d["secretKey"] for d in secret["spec"]["data"]] == [PULL_SECRET_KEY]
    # the cloud identity of Pipelines' store stays on the profiles' default-editor beside the login
    editor = next(o for o in accounts if o["metadata"]["name"] == "default-editor")
    assert "iam.gke.io/gcp-service-account" in editor["metadata"]["annotations"]


def test_every_profile_is_the_specs_since_the_dashboard_registers_none(built):
    """The profile controller has no default pull secret (nor store identity) for the accounts it creates, so
    they reach profiles through the spec, which declares the accounts: the dashboard's self-service
    registration stays off, as upstream has it, and only the spec makes profiles."""
    for env in ("local", "prod"):
        objects = built("26.03", env).objects
        dashboard = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "centraldashboard")
        variables = {v["name"]: v.get("value") for v in dashboard["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert variables["REGISTRATION_FLOW"] == "false", env
        spec_profiles = {p["name"] for p in shipped_spec()["profiles"] if env in p.get("environments", [env])}
        assert {o["metadata"]["name"] for o in objects if o["kind"] == "Profile"} == spec_profiles


def test_environments_without_a_login_pull_as_upstream(built):
    for env in ("local", "staging"):
        assert "imagePullSecret" not in _environment(env)
        for obj in built("26.03", env).objects:
            assert "imagePullSecrets" not in obj, obj["metadata"]
            if obj["kind"] in WORKLOADS:
                assert "imagePullSecrets" not in obj["spec"]["template"]["spec"], obj["metadata"]


def test_the_local_backend_lists_the_login_it_cannot_generate(project):
    spec = shipped_spec()
    local = next(e for e in spec["environments"] if e["name"] == "local")
    local["imagePullSecret"] = "laptop-pull"
    project.write_spec(spec)
    listed = project.kfgen("--output", "json", "secrets", "--env", "local")
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout)["keys"] if r["secret"] == "laptop-pull"]
    assert rows and {r["type"] for r in rows} == {PULL_SECRET_TYPE}
    assert all("create it before applying" in r["source"] for r in rows)
    assert {"kubeflow", "istio-system", "ml-research"} <= {r["namespace"] for r in rows}
    generated = project.kfgen("secrets", "--env", "local", "--generate")
    assert generated.returncode == 0, generated.stderr
    written = (project.root / ".secrets" / "local.yaml").read_text(encoding="utf-8")
    assert "laptop-pull" not in written and PULL_SECRET_KEY not in written
