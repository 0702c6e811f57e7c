"""The notebook spawner's settings reach the ConfigMap the notebooks web app reads (jupyter-web-app-config),
on top of upstream's file, in every environment of the shipped spec; settings that say what upstream says
leave upstream's file as it is; profile quotas count the GPU resource the settings name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import TempProject, shipped_spec, source_cache_dirs
from kfgen.errors import BuildError
from kfgen.mirror import MirrorInputs, read_inputs
from kfgen.notebooks import KEY
from kfgen.output import write_tree
from kfgen.render import render

SPAWNER = "applications/jupyter/jupyter-web-app/upstream/base/configs/spawner_ui_config.yaml"


def _upstream_text(release: str = "26.03") -> str:
    for directory in source_cache_dirs():
        path = Path(directory) / "github.com/kubeflow/manifests" / release / SPAWNER
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise AssertionError("upstream's spawner configuration is in no source cache")


def _spawner(objects: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    [configmap] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("jupyter-web-app-config")]
    text = configmap["data"][KEY]
    return text, yaml.safe_load(text)["spawnerFormDefaults"]


def _settings(env: str) -> dict[str, Any]:
    spec = shipped_spec()
    settings = copy.deepcopy(spec["components"]["jupyter-web-app"]["settings"])
    environment = next(e for e in spec["environments"] if e["name"] == env)
    for key, value in (((environment.get("components") or {}).get("jupyter-web-app") or {}).get("settings") or {}).items():
        settings[key] = {**settings[key], **value} if isinstance(value, dict) else value
    return settings


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_every_environment_offers_the_spec_choices(built, env):
    settings = _settings(env)
    mirror = next(e for e in shipped_spec()["environments"] if e["name"] == env).get("registryMirror")
    _, form = _spawner(built("26.03", env).objects)
    upstream = yaml.safe_load(_upstream_text())["spawnerFormDefaults"]
    expected = [i.replace("ghcr.io/", f"{mirror}/") if mirror else i for i in settings["images"]["jupyter"]["options"]]
    assert form["image"] == {"value": expected[0], "options": expected}
    # kinds the spec leaves alone keep upstream's list (through the mirror where there is one)
    assert [i.rsplit("/", 1)[-1] for i in form["imageGroupOne"]["options"]] == \
        [i.rsplit("/", 1)[-1] for i in upstream["imageGroupOne"]["options"]]
    assert form["allowCustomImage"] is settings["allowCustomImage"] if "allowCustomImage" in settings else form["allowCustomImage"] is True
    assert form["gpus"]["value"]["vendors"] == settings["gpus"]["vendors"]
    claim = form["workspaceVolume"]["value"]["newPvc"]["spec"]
    assert claim["resources"]["requests"]["storage"] == settings["workspaceVolume"]["size"]
    assert claim.get("storageClassName") == settings["workspaceVolume"].get("storageClass")
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert form["tolerationGroup"]["options"] == settings.get("tolerationGroups", [])
    # everything the settings do not name is upstream's
    for field in ("cpu", "memory", "imagePullPolicy", "shm", "environment", "hideRegistry", "affinityConfig"):
        assert form[field] == upstream[field], field


def test_prod_keeps_notebooks_to_the_reviewed_images_and_its_gpu_pool(built):
    _, form = _spawner(built("26.03", "prod").objects)
    assert form["allowCustomImage"] is False
    assert [g["groupKey"] for g in form["tolerationGroup"]["options"]] == ["gpu-a100"]
    assert form["workspaceVolume"]["value"]["newPvc"]["spec"]["storageClassName"] == "premium-rwo"


@pytest.fixture(scope="module")
def other_gpus(tmp_path_factory) -> TempProject:
    """The shipped spec with no spawner settings, but AMD GPUs in profile quotas; and data volumes in staging."""
    spec = shipped_spec()
    spec["components"]["jupyter-web-app"] = {"settings": {"gpus": {"quotaResource": "amd.com/gpu"}}}
    for env in spec["environments"]:
        (env.get("components") or {}).pop("jupyter-web-app", None)
    staging = next(e for e in spec["environments"] if e["name"] == "staging")
    staging.setdefault("components", {})["jupyter-web-app"] = {"settings": {
        "dataVolumes": [{"name": "datasets", "mount": "/home/jovyan/datasets", "size": "100Gi", "accessMode": "ReadWriteMany",
                         "storageClass": "efs"}],
        "affinityConfigs": [{"configKey": "gpu-nodes", "displayName": "GPU nodes", "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["gpu"]}]}]}}}}],
    }}
    project = TempProject(tmp_path_factory.mktemp("notebooks") / "project", spec)
    project.vendor()
    project.render()
    return project


def test_settings_that_say_what_upstream_says_keep_upstream_file(other_gpus):
    local = other_gpus.build("local").objects
    text, _ = _spawner(local)
    assert text == _upstream_text()
    assert not (other_gpus.root / "overlays/local/jupyter-web-app/spawner-config.yaml").exists()
    quotas = [o["spec"]["resourceQuotaSpec"]["hard"] for o in local if o["kind"] == "Profile" and "resourceQuotaSpec" in o["spec"]]
    gpu_quotas = [q for q in quotas if any("gpu" in k for k in q)]
    assert gpu_quotas and all("requests.amd.com/gpu" in q and "requests.nvidia.com/gpu" not in q for q in gpu_quotas)


def test_data_volumes_and_affinities(other_gpus):
    _, form = _spawner(other_gpus.build("staging").objects)
    assert form["dataVolumes"]["value"] == [{"mount": "/home/jovyan/datasets", "newPvc": {
        "metadata": {"name": "{notebook-name}-datasets"},
        "spec": {"resources": {"requests": {"storage": "100Gi"}}, "accessModes": ["ReadWriteMany"], "storageClassName": "efs"}}}]
    assert [c["configKey"] for c in form["affinityConfig"]["options"]] == ["gpu-nodes"]
    assert form["affinityConfig"]["value"] == ""  # offered, not imposed


def test_a_changed_upstream_spawner_fails_the_build(tmp_path: Path):
    """The settings replace upstream's file only after testing it is the one they were written for."""
    spec = shipped_spec()
    project = TempProject(tmp_path / "project", spec)
    project.vendor()
    plan = project.plan()
    inputs = read_inputs(plan, project.root, None)
    changed = {key: text.replace("hideTag: false", "hideTag: true") if key[2] == SPAWNER else text for key, text in inputs.files.items()}
    assert changed != inputs.files
    write_tree(render(plan, MirrorInputs(changed, inputs.pins)), project.root)
    with pytest.raises(BuildError, match="test failed"):
        project.build("local")


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_every_profile_gets_the_spec_pod_defaults_ticked_in_the_spawner(built, project, env):
    spec = shipped_spec()
    wanted = spec["components"]["tenants"]["settings"]["podDefaults"]
    profiles = {p["name"] for p in spec["profiles"] if env in p.get("environments", [env])}
    objects = built("26.03", env).objects
    made = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"] for o in objects if o["kind"] == "PodDefault"}
    assert set(made) == {(profile, d["name"]) for profile in profiles for d in wanted}
    for (_, name), made_spec in made.items():
        [default] = [d for d in wanted if d["name"] == name]
        assert made_spec["selector"] == {"matchLabels": {name: "true"}}
        assert made_spec["desc"] == default["description"]
        for field in ("env", "volumes", "volumeMounts"):
            assert made_spec[field] == default[field], field
    _, form = _spawner(objects)
    assert form["configurations"]["value"] == _settings(env)["preselectedPodDefaults"] == [d["name"] for d in wanted]
    # applied after the admission webhook, whose CRD and webhook they need
    tenants = next(p for p in project.plan().environment(env).components if p.name == "tenants")
    assert "admission-webhook" in tenants.needs
