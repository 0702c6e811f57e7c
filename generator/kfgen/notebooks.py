"""The notebook spawner's choices, from the jupyter-web-app component's settings: image lists per kind of
server, custom images, GPU vendors, workspace and data volumes, preselected PodDefaults, affinity and
toleration groups.

They live in upstream's spawner_ui_config.yaml, which a configMapGenerator turns into the key of the same
name in ConfigMap jupyter-web-app-config. The overlay replaces that key with upstream's document changed
where the settings say, testing upstream's value first (a new release with another file fails the build
instead of losing a setting); a registry mirror then rewrites the replaced value's images. Settings that
say what upstream says change nothing, so an environment without notebook settings keeps upstream's file.
"""

from __future__ import annotations

import copy
from typing import Any

from .yamlio import dump, load_plain

COMPONENT = "jupyter-web-app"
CONFIGMAP = "jupyter-web-app-config"
KEY = "spawner_ui_config.yaml"
# The spawner's three image lists: JupyterLab, VS Code (code-server), RStudio.
IMAGE_FIELDS = {"jupyter": "image", "vscode": "imageGroupOne", "rstudio": "imageGroupTwo"}


def setting_problems(settings: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """What the schema cannot say about schema-valid settings: (path below settings, message)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for kind, images in sorted((settings.get("images") or {}).items()):
        default = images.get("default")
        if default is not None and default not in images["options"]:
            problems.append((("images", kind, "default"), f"{default!r} is not one of the {kind} options"))
    for field, key in (("dataVolumes", "name"), ("dataVolumes", "mount"), ("affinityConfigs", "configKey"),
                       ("tolerationGroups", "groupKey")):
        seen: set[str] = set()
        for index, item in enumerate(settings.get(field) or ()):
            if item[key] in seen:
                problems.append(((field, index, key), f"{item[key]!r} is there twice"))
            seen.add(item[key])
    for index, volume in enumerate(settings.get("dataVolumes") or ()):
        if volume["mount"].rstrip("/") == "/home/jovyan":
            problems.append((("dataVolumes", index, "mount"), "/home/jovyan is the workspace volume's mount"))
    return problems


def _volume_claim(spec: dict[str, Any], size: str | None, storage_class: str | None, access_mode: str | None) -> None:
    if size:
        spec.setdefault("resources", {}).setdefault("requests", {})["storage"] = size
    if access_mode:
        spec["accessModes"] = [access_mode]
    if storage_class:
        spec["storageClassName"] = storage_class


def spawner_config(upstream: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Upstream's spawner configuration with the settings applied."""
    config = copy.deepcopy(upstream)
    form = config["spawnerFormDefaults"]
    for kind, images in (settings.get("images") or {}).items():
        options = list(images["options"])
        form[IMAGE_FIELDS[kind]] = {**form.get(IMAGE_FIELDS[kind], {}), "value": images.get("default", options[0]), "options": options}
    if "allowCustomImage" in settings:
        form["allowCustomImage"] = settings["allowCustomImage"]
    vendors = (settings.get("gpus") or {}).get("vendors")
    if vendors:
        form["gpus"]["value"]["vendors"] = [{"limitsKey": v["limitsKey"], "uiName": v["uiName"]} for v in vendors]
    workspace = settings.get("workspaceVolume") or {}
    if workspace:
        _volume_claim(form["workspaceVolume"]["value"]["newPvc"]["spec"], workspace.get("size"), workspace.get("storageClass"),
                      workspace.get("accessMode"))
    if settings.get("dataVolumes"):
        volumes = []
        for volume in settings["dataVolumes"]:
            spec: dict[str, Any] = {}
            _volume_claim(spec, volume["size"], volume.get("storageClass"), volume.get("accessMode", "ReadWriteOnce"))
            volumes.append({"mount": volume["mount"], "newPvc": {"metadata": {"name": f"{{notebook-name}}-{volume['name']}"}, "spec": spec}})
        form["dataVolumes"]["value"] = volumes
    if settings.get("preselectedPodDefaults"):
        form["configurations"]["value"] = list(settings["preselectedPodDefaults"])
    if settings.get("affinityConfigs"):
        form["affinityConfig"]["options"] = [dict(c) for c in settings["affinityConfigs"]]
    if settings.get("tolerationGroups"):
        form["tolerationGroup"]["options"] = [dict(g) for g in settings["tolerationGroups"]]
    return config


def spawner_patch(upstream_text: str, settings: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The JSON patch of ConfigMap jupyter-web-app-config that sets the spawner's choices; None when the
    settings keep upstream's."""
    upstream = load_plain(upstream_text)
    config = spawner_config(upstream, settings)
    if config == upstream:
        return None
    text = "# Upstream's spawner_ui_config.yaml with the jupyter-web-app settings of the spec applied.\n" + dump(config)
    pointer = "/data/" + KEY
    return [{"op": "test", "path": pointer, "value": upstream_text}, {"op": "replace", "path": pointer, "value": text}]


def setting_images(settings: dict[str, Any]) -> list[str]:
    """The images the settings offer in the spawner, in order."""
    return [image for images in (settings.get("images") or {}).values() for image in images["options"]]


def changes_spawner(component: str, settings: dict[str, Any], defaults: dict[str, Any]) -> bool:
    """Whether a component's settings may change the spawner's configuration (which needs upstream's file)."""
    return component == COMPONENT and settings != defaults
