"""The escape hatch: kustomize Components the user keeps in folders of their own, named per component and
environment in the spec, are built into the overlays, checked like every other object, followed by the
build cache and `kfgen publish`, and never reported as drift."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from helpers import TempProject, shipped_spec
from kfgen.publish import overlay_files

RELEASE = "26.03"
FOLDER = "customizations/local/volumes-web-app"


def _dashboard(build: Any) -> dict[str, Any]:
    return next(o for c in build.components if c.name == "central-dashboard" for o in c.objects
                if o["kind"] == "Deployment" and o["metadata"]["name"] == "centraldashboard")


def test_shipped_prod_dashboard_carries_the_teams_own_patch(built):
    prod, staging = _dashboard(built(RELEASE, "prod")), _dashboard(built(RELEASE, "staging"))
    assert prod["metadata"]["labels"]["example.com/cost-center"] == "ml-platform"
    assert prod["spec"]["template"]["metadata"]["annotations"]["example.com/log-pipeline"] == "platform"
    env = {e["name"]: e.get("value") for e in prod["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["COLLECT_METRICS"] == "false"
    # Only where the spec names it; and kfgen's own settings still apply on top (the registry mirror).
    assert "example.com/cost-center" not in staging["metadata"]["labels"]
    assert prod["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.example.com/mirror/")


def _project_with_customization(make_project, files: dict[str, Any]) -> TempProject:
    spec = copy.deepcopy(shipped_spec())
    local = next(e for e in spec["environments"] if e["name"] == "local")
    local["components"] = {"volumes-web-app": {"customizations": [FOLDER]}}
    project: TempProject = make_project(spec)
    folder = project.root / FOLDER
    folder.mkdir(parents=True)
    for name, document in files.items():
        (folder / name).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    project.vendor()
    project.render()
    return project


COMPONENT = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "resources": ["quota.yaml"],
             "patches": [{"path": "replicas.yaml"}]}
QUOTA = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "volumes-extra", "namespace": "kubeflow"},
         "data": {"note": "kept by the platform team"}}
REPLICAS = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "volumes-web-app-deployment", "namespace": "kubeflow"},
            "spec": {"template": {"metadata": {"annotations": {"example.com/owner": "platform"}}}}}


def test_extra_manifests_and_patches_are_built_checked_cached_and_published(make_project):
    project = _project_with_customization(make_project, {"kustomization.yaml": COMPONENT, "quota.yaml": QUOTA, "replicas.yaml": REPLICAS})
    objects = [o for c in project.build("local").components if c.name == "volumes-web-app" for o in c.objects]
    extra = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "volumes-extra")
    assert extra["data"] == QUOTA["data"]
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["example.com/owner"] == "platform"
    assert project.kfgen("check", "--env", "local").returncode == 0

    # A change in the folder is a change of the build (not a stale cache entry), and not drift.
    QUOTA_CHANGED = {**QUOTA, "data": {"note": "changed"}}
    (project.root / FOLDER / "quota.yaml").write_text(yaml.safe_dump(QUOTA_CHANGED), encoding="utf-8")
    drift = project.kfgen("check", "--drift-only")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    built = project.kfgen("build", "--env", "local", "--out", str(project.root / "out"))
    assert built.returncode == 0, built.stderr
    text = "".join(p.read_text() for p in (project.root / "out").rglob("*.yaml"))
    assert "note: changed" in text and "kept by the platform team" not in text

    # An invalid object in the folder is a finding of `kfgen check`, like any other.
    (project.root / FOLDER / "quota.yaml").write_text(yaml.safe_dump({**QUOTA, "data": {"note": 7}}), encoding="utf-8")
    failed = project.kfgen("check", "--env", "local")
    assert failed.returncode == 1 and "volumes-extra" in failed.stdout, failed.stdout[-2000:]

    # The deploy branch carries the folder, which kfgen neither generates nor removes.
    published = overlay_files(project.root, project.plan().environment("local"))
    assert {f"{FOLDER}/kustomization.yaml", f"{FOLDER}/quota.yaml", f"{FOLDER}/replicas.yaml"} <= set(published)
    generated = yaml.safe_load((project.root / "generated-files.json").read_text())
    assert generated["files"] and not any(p.startswith("customizations/") for p in generated["files"])
    assert project.kfgen("render").returncode == 0
    assert (project.root / FOLDER / "quota.yaml").is_file()


def test_a_folder_that_is_not_a_kustomize_component_is_refused(make_project):
    project = _project_with_customization(make_project, {"kustomization.yaml": COMPONENT, "quota.yaml": QUOTA, "replicas.yaml": REPLICAS})
    kustomization = project.root / FOLDER / "kustomization.yaml"
    kustomization.write_text(yaml.safe_dump({**COMPONENT, "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}))
    result = project.kfgen("validate")
    assert result.returncode == 2
    assert f"environments[0].components.volumes-web-app.customizations[0]: '{FOLDER}': its kustomization.yaml is of kind " \
           "'Kustomization'" in result.stderr, result.stderr


def test_a_folder_removed_after_a_valid_run_is_reported_not_taken_from_the_cache(make_project):
    project = _project_with_customization(make_project, {"kustomization.yaml": COMPONENT, "quota.yaml": QUOTA, "replicas.yaml": REPLICAS})
    assert project.kfgen("validate").returncode == 0  # the resolved spec is now cached
    for path in sorted((project.root / FOLDER).iterdir()):
        path.unlink()
    Path(project.root / FOLDER).rmdir()
    result = project.kfgen("validate")
    assert result.returncode == 2 and "no such folder in the project" in result.stderr, result.stderr
