"""Every image an environment with a registry mirror pulls comes from the mirror, wherever upstream names
it: a scan of every string of every built object, YAML and JSON embedded in strings parsed and scanned
too, finds no image reference outside the mirror, for both releases with every component enabled."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import TempProject, spec_for_release
from kfgen.build import EnvironmentBuild
from kfgen.errors import BuildError
from kfgen.images import environment_images
from kfgen.mirror import MirrorInputs, read_inputs
from kfgen.render import render

RELEASES = ("26.03", "v1.11.0")
# The scan's own notion of an image reference, independent of kfgen's: [host/]path[:tag][@digest], with a
# path of two parts or more and a tag or a digest (so that `app.kubernetes.io/name` is none).
IMAGE = re.compile(r"^(?:[a-z0-9][a-z0-9.-]*(?::[0-9]+)?/)?[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)+"
                   r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$")


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string below value with where it is; strings that hold YAML or JSON documents are opened too."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}/{index}")
    elif isinstance(value, str):
        yield value, where
        text = value.strip()
        if "\n" in text or text[:1] in "{[":
            for load in (json.loads, yaml.safe_load):
                try:
                    document = load(text)
                except Exception:
                    continue
                if isinstance(document, (dict, list)):
                    yield from strings(document, f"{where}|")
                    break


def image_references(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for obj in objects:
        for text, where in strings(obj, f"{obj['kind']}/{obj['metadata'].get('name')}"):
            for token in re.split(r"[\s=,\"'`()\[\]{}<>;|]+", text):
                token = token.strip(".:")
                if "://" in token or not IMAGE.match(token):
                    continue
                last = token.split("@")[0].rsplit("/", 1)[-1]
                if ":" in last or "@sha256:" in token:
                    found.setdefault(token, set()).add(where)
    return found


def all_components_spec(release: str) -> dict[str, Any]:
    spec = spec_for_release(release, all_components=True)
    for environment in spec["environments"]:
        # knative-eventing ships PodDisruptionBudgets of its own, which HA's would collide with; images do not
        # depend on sizing.
        environment.setdefault("sizing", {})["highAvailability"] = False
    return spec


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], tuple[str, EnvironmentBuild, TempProject]]:
    """(release, environment) -> (its mirror, its build, the project) for each environment that sets a mirror."""
    builds = {}
    for release in RELEASES:
        spec = all_components_spec(release)
        project = TempProject(tmp_path_factory.mktemp(f"mirror-{release}") / "project", spec)
        project.vendor()
        project.render()
        for environment in spec["environments"]:
            if environment.get("registryMirror"):
                builds[(release, environment["name"])] = (environment["registryMirror"], project.build(environment["name"]), project)
    assert len(builds) == 2 * len(RELEASES)
    return builds


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_every_image_comes_from_the_mirror(mirrored, release):
    for (found_release, env), (mirror, build, project) in mirrored.items():
        if found_release != release:
            continue
        objects = [obj for component in build.components for obj in component.objects]
        found = image_references(objects)
        outside = {ref: sorted(where)[:3] for ref, where in found.items() if not ref.startswith(mirror + "/")}
        assert not outside, f"{env}: images outside the mirror {mirror}: {json.dumps(outside, indent=1)}"
        # The scan does see what it looks for: the catalog's places, embedded YAML among them.
        assert any("katib-config" in where and "|" in where for refs in found.values() for where in refs)
        assert len(found) > 60
        # kfgen images, which looks only where the catalog says images are, lists exactly what the scan found.
        plan = project.plan()
        listed = environment_images(plan.environment(env), release, objects, read_inputs(plan, project.root, None))
        assert {i.image for i in listed} == set(found)
        assert all(i.source != i.image and not i.source.startswith(mirror) for i in listed)


@pytest.mark.slow
def test_kfgen_images_lists_what_the_scan_finds(project):
    project.vendor()
    project.render()
    listed = project.kfgen("images", "--env", "prod", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    images = json.loads(listed.stdout)
    assert [i["image"] for i in images] == sorted(i["image"] for i in images)
    assert {i["image"] for i in images} == set(image_references(project.build("prod").objects))
    driver = next(i for i in images if i["name"].endswith("/kfp-driver"))
    assert driver["image"].startswith("registry.example.com/mirror/kubeflow/kfp-driver:")
    assert driver["source"] == "ghcr.io/kubeflow/kfp-driver:" + driver["tag"]
    skopeo = project.kfgen("images", "--env", "prod", "--format", "skopeo")
    assert skopeo.returncode == 0, skopeo.stderr
    sync = yaml.safe_load(skopeo.stdout)
    assert driver["tag"] in sync["ghcr.io"]["images"]["kubeflow/kfp-driver"]
    assert sum(len(repos["images"]) for repos in sync.values()) <= len(images)
    assert project.kfgen("images", "--env", "prod", "--format", "skopeo").stdout == skopeo.stdout


def test_the_scan_finds_images_in_places_the_catalog_does_not_know():
    planted = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"},
               "data": {"config.yaml": "runtime:\n  sidecar:\n    image: ghcr.io/example/new-sidecar:v1\n",
                        "settings": json.dumps({"helper": {"image": "docker.io/example/helper@sha256:" + "a" * 64}}),
                        "flags": "--helper-image=quay.io/example/flag:1.0 --label=app.kubernetes.io/name"}}
    found = image_references([planted])
    assert set(found) == {"ghcr.io/example/new-sidecar:v1", "docker.io/example/helper@sha256:" + "a" * 64,
                          "quay.io/example/flag:1.0"}
    assert "ConfigMap/new/data/config.yaml|/runtime/sidecar/image" in found["ghcr.io/example/new-sidecar:v1"]


def test_a_changed_upstream_value_fails_the_build(tmp_path: Path):
    """The patches test upstream's exact value first: an upstream that changed it fails the build."""
    spec = spec_for_release("26.03")
    spec["components"] = {"jupyter-web-app": {"enabled": True}}
    for env in spec["environments"]:  # upstream's spawner choices: the mirror's patch alone (notebook settings: test_notebooks.py)
        (env.get("components") or {}).pop("jupyter-web-app", None)
    project = TempProject(tmp_path / "project", spec)
    project.vendor()
    plan = project.plan()
    inputs = read_inputs(plan, project.root, None)
    changed = {key: text.replace("jupyter-scipy", "jupyter-scipy-renamed") if key[2].endswith("spawner_ui_config.yaml") else text
               for key, text in inputs.files.items()}
    assert changed != inputs.files
    from kfgen.output import write_tree

    write_tree(render(plan, MirrorInputs(changed, inputs.pins)), project.root)
    with pytest.raises(BuildError, match="test failed"):
        project.build("prod")
    write_tree(render(plan, inputs), project.root)
    patch = (project.root / "overlays/prod/jupyter-web-app/mirror-configmap-jupyter-web-app-config.yaml").read_text()
    assert "registry.example.com/mirror/kubeflow/kubeflow/notebook-servers/jupyter-scipy:" in patch


def test_the_image_lock_pins_rewritten_values_by_digest(tmp_path: Path):
    from kfgen.errors import InputError
    from kfgen.mirror import IMAGE_LOCK, load_image_lock, rewrite_text

    digest = "sha256:" + "b" * 64
    (tmp_path / IMAGE_LOCK).write_text(json.dumps({"images": {"ghcr.io/kubeflow/kfp-driver:2.16.0": digest}}))
    pins = load_image_lock(tmp_path / IMAGE_LOCK)
    text = "driver: ghcr.io/kubeflow/kfp-driver:2.16.0\nlauncher: ghcr.io/kubeflow/kfp-launcher:2.16.0\n"
    assert rewrite_text(text, "m.example/mirror", pins) == (
        f"driver: m.example/mirror/kubeflow/kfp-driver:2.16.0@{digest}\nlauncher: m.example/mirror/kubeflow/kfp-launcher:2.16.0\n")
    (tmp_path / IMAGE_LOCK).write_text(json.dumps({"images": {"ghcr.io/kubeflow/kfp-driver:2.16.0": "latest"}}))
    with pytest.raises(InputError, match="sha256"):
        load_image_lock(tmp_path / IMAGE_LOCK)


@pytest.mark.slow
def test_an_image_lock_pins_every_image_and_check_names_what_it_lacks(project):
    import hashlib

    from kfgen.images import unpinned_findings
    from kfgen.mirror import IMAGE_LOCK

    project.vendor()
    project.render()
    listed = project.kfgen("images", "--env", "prod", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    sources = sorted({i["source"] for i in json.loads(listed.stdout) if i["digest"] is None})
    left_out = next(s for s in sources if "/kfp-driver:" in s)
    lock = {s: "sha256:" + hashlib.sha256(s.encode()).hexdigest() for s in sources if s != left_out}
    (project.root / IMAGE_LOCK).write_text(json.dumps({"images": lock}))
    project.render()
    build = project.build("prod")
    plan = project.plan()
    images = environment_images(plan.environment("prod"), "26.03", build.objects, read_inputs(plan, project.root, None))
    by_source = {i.source.split("@")[0]: i for i in images}
    for source, digest in lock.items():
        name = source.rsplit(":", 1)[0]
        pinned = [i for i in images if i.digest == digest]
        assert pinned and all(i.image.startswith("registry.example.com/mirror/") for i in pinned), (source, by_source.get(source))
        assert all(i.name != name or i.digest for i in images)
    findings = unpinned_findings(plan.environment("prod"), "26.03", [(c.name, c.objects) for c in build.components],
                                 read_inputs(plan, project.root, None))
    assert [(f.component, f.check) for f in findings] == [("pipelines", "image-lock")]
    assert left_out in findings[0].message
    (project.root / IMAGE_LOCK).write_text(json.dumps({"images": {left_out: "latest"}}))
    refused = project.kfgen("render")
    assert refused.returncode == 2 and IMAGE_LOCK in refused.stderr


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_images_the_profile_controller_starts_come_from_the_mirror(mirrored, release):
    """KFP's profile controller starts the artifact proxy and the visualization server in profile namespaces
    under names its code holds: the built controller names the mirror's copies, with upstream's appVersion
    as the tag, the same images the component's own containers pull."""
    for (found_release, _), (mirror, build, _) in mirrored.items():
        if found_release != release:
            continue
        objects = [obj for component in build.components for obj in component.objects]
        controller = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "kubeflow-pipelines-profile-controller")
        variables = {v["name"]: v.get("value") for v in controller["spec"]["template"]["spec"]["containers"][0]["env"]}
        install_config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("pipeline-install-config"))
        version = install_config["data"]["appVersion"]
        assert variables["FRONTEND_IMAGE"] == f"{mirror}/kubeflow/kfp-frontend"
        assert variables["VISUALIZATION_SERVER_IMAGE"] == f"{mirror}/kubeflow/kfp-visualization-server"
        assert variables["FRONTEND_TAG"] == variables["VISUALIZATION_SERVER_TAG"] == version
        pulled = set(image_references(objects))
        assert {f"{variables['FRONTEND_IMAGE']}:{version}", f"{variables['VISUALIZATION_SERVER_IMAGE']}:{version}"} <= pulled


def test_the_profile_controller_images_are_pinned_and_checked_against_upstream(tmp_path: Path):
    from kfgen.catalog import load_catalog
    from kfgen.errors import SourceError
    from kfgen.mirror import mirror_patches

    project = TempProject(tmp_path / "project")
    project.vendor()
    inputs = read_inputs(project.plan(), project.root, None)
    pipelines = load_catalog(project.root / "components").components["pipelines"]
    release = project.plan().platform.kubeflow_version
    code = pipelines.releases[release].code_images[0]
    digest = "sha256:" + "c" * 64
    version = next(v for k, v in inputs.files.items() if k[2] == code.tag_file).split("appVersion:")[1].split()[0]
    pinned = MirrorInputs(inputs.files, {f"{code.image}:{version}": digest})
    patch = next(p for name, p, _ in mirror_patches(pipelines, release, "m.example/mirror", pinned) if "profile-controller" in name)
    env = {v["name"]: v["value"] for v in patch["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[code.name_env] == "m.example/mirror/kubeflow/kfp-frontend"
    assert env[code.tag_env] == f"{version}@{digest}"
    assert env["VISUALIZATION_SERVER_TAG"] == version  # the lock pins only the frontend
    # An upstream controller that sets the variable itself: its value is no longer the code's default.
    changed = {k: t.replace("        - name: KFP_VERSION\n", f"        - name: {code.name_env}\n          value: x/y\n        - name: KFP_VERSION\n")
               if k[2] == code.file else t for k, t in inputs.files.items()}
    assert changed != inputs.files
    with pytest.raises(SourceError, match=f"now sets {code.name_env}"):
        mirror_patches(pipelines, release, "m.example/mirror", MirrorInputs(changed, {}))
