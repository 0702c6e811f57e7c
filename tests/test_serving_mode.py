"""KServe's serving mode: RawDeployment needs no Knative, which then leaves the environment with its
images and configuration; Serverless needs Knative Serving enabled or provided, and is applied after it."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from helpers import TempProject, shipped_spec
from kfgen.render import render

RELEASES = ("26.03", "v1.11.0")


def _config(build: Any) -> dict[str, Any]:
    return next(o for o in build.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "inferenceservice-config")


def test_staging_serves_models_without_knative(built):
    for release in RELEASES:
        staging, prod = built(release, "staging"), built(release, "prod")
        assert json.loads(_config(staging)["data"]["deploy"]) == {"defaultDeploymentMode": "RawDeployment"}
        assert json.loads(_config(prod)["data"]["deploy"]) == {"defaultDeploymentMode": "Serverless"}  # upstream's
        assert "knative-serving" not in {c.name for c in staging.components}
        assert "knative-serving" in {c.name for c in prod.components}
        # Knative's objects, images and configuration are gone with it.
        knative = [o for o in staging.objects if o["metadata"].get("namespace") == "knative-serving" or
                   o["apiVersion"].startswith(("serving.knative.dev", "networking.internal.knative.dev"))]
        assert knative == [], [(o["kind"], o["metadata"]["name"]) for o in knative][:5]
        images = {c["image"] for o in staging.objects if o["kind"] == "Deployment" for c in o["spec"]["template"]["spec"]["containers"]}
        assert not [i for i in images if "knative" in i]


def test_serverless_is_applied_after_knative_and_raw_deployment_is_not(make_project):
    project: TempProject = make_project()
    plan = project.plan()
    kserve = {env.name: next(p for p in env.components if p.name == "kserve") for env in plan.environments}
    knative = {env.name: next((p for p in env.components if p.name == "knative-serving"), None) for env in plan.environments}
    assert "knative-serving" in kserve["prod"].needs and knative["prod"] is not None
    assert kserve["prod"].wave > knative["prod"].wave
    assert "knative-serving" not in kserve["staging"].needs and knative["staging"] is None
    files = render(plan).files
    application = yaml_documents(files, "gitops/prod/apps/kserve.yaml")[0]
    assert int(application["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) == kserve["prod"].wave


def test_flux_waits_for_knative_only_where_kserve_needs_it(make_project):
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"]["engine"] = "flux"
    project: TempProject = make_project(spec)
    files = render(project.plan()).files
    prod = yaml_documents(files, "gitops/prod/components/kserve.yaml")[0]
    staging = yaml_documents(files, "gitops/staging/components/kserve.yaml")[0]
    assert {"name": "prod-knative-serving"} in prod["spec"]["dependsOn"]
    assert {"name": "staging-knative-serving"} not in staging["spec"]["dependsOn"]


def yaml_documents(files: dict[str, bytes], path: str) -> list[Any]:
    return list(yaml.safe_load_all(files[path]))


def test_raw_deployment_builds_and_passes_the_checks_with_knative_enabled_too(make_project):
    spec = copy.deepcopy(shipped_spec())
    spec["environments"][0]["components"] = {"kserve": {"settings": {"deploymentMode": "RawDeployment"}}}
    project: TempProject = make_project(spec)
    assert "knative-serving" in {p.name for p in project.plan().environment("local").components}
    project.vendor()
    project.render()
    result = project.kfgen("check", "--env", "local")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
