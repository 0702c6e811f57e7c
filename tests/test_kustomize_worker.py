"""tools/kustomize-worker: the kustomize binary's output, byte for byte, from one long-lived process."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from helpers import PROJECT
from kfgen.errors import BuildError
from kfgen.kustomize import KUSTOMIZE_VERSION, KustomizePool, find_kustomize, find_kustomize_worker, kustomize_build


@pytest.fixture
def pool():
    workers = KustomizePool(find_kustomize_worker(PROJECT))
    yield workers
    workers.close()


@pytest.mark.slow  # every base and overlay, by the worker and by the binary
def test_every_base_and_overlay_builds_to_the_binarys_bytes(make_project, pool):
    """One worker builds them all in turn, so state one build leaves behind would show in the next."""
    project = make_project()
    project.vendor()
    project.render()
    binary = find_kustomize(PROJECT)
    folders = sorted(p.parent for p in [*project.root.glob("base/*/kustomization.yaml"),
                                        *project.root.glob("overlays/prod/*/kustomization.yaml")])
    assert len(folders) > 40
    for folder in folders:
        assert pool.build(folder) == kustomize_build(binary, folder), folder


def _patched_project(root: Path, resource: str, patch: str, schema: dict | None) -> Path:
    """A kustomization of one resource and one patch, with its own OpenAPI schema when one is given."""
    root.mkdir()
    (root / "resource.yaml").write_text(resource)
    (root / "patch.yaml").write_text(patch)
    kustomization = "resources:\n- resource.yaml\npatches:\n- path: patch.yaml\n"
    if schema is not None:
        (root / "schema.json").write_text(json.dumps(schema))
        kustomization += "openapi:\n  path: schema.json\n"
    (root / "kustomization.yaml").write_text(kustomization)
    return root


def _widget_project(root: Path, custom_schema: bool) -> Path:
    """A patch of a list that merges by name only under a custom OpenAPI schema; without it, it replaces."""
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  parts:\n  - name: {}\n    size: {}\n"
    parts = {"type": "array", "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge",
             "items": {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"}}}}
    schema = {"definitions": {"com.example.v1.Widget": {
        "type": "object", "x-kubernetes-group-version-kind": [{"group": "example.com", "kind": "Widget", "version": "v1"}],
        "properties": {"spec": {"type": "object", "properties": {"parts": parts}}}}}}
    return _patched_project(root, widget.format("a", 1), widget.format("b", 2), schema if custom_schema else None)


def test_a_custom_openapi_schema_is_forgotten_after_its_build(tmp_path, pool):
    custom = _widget_project(tmp_path / "custom", custom_schema=True)
    plain = _widget_project(tmp_path / "plain", custom_schema=False)
    binary = find_kustomize(PROJECT)
    merged = pool.build(custom)
    assert re.findall(r"name: (\w)", merged) == ["w", "b", "a"]  # the schema's merge key applied
    replaced = pool.build(plain)
    assert re.findall(r"name: (\w)", replaced) == ["w", "b"]
    assert (merged, replaced) == (kustomize_build(binary, custom), kustomize_build(binary, plain))


def _deployment_project(root: Path, custom_schema: bool) -> Path:
    """A patch of a Deployment's containers: merged by name under the built-in schema; under a custom schema
    alone (which knows nothing of Deployments), the patch's list replaces the original."""
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  template:\n    spec:\n"
                  "      containers:\n{}")
    container = "      - name: {0}\n        image: {0}:{1}\n"
    return _patched_project(root, deployment.format(container.format("a", 1) + container.format("b", 1)),
                            deployment.format(container.format("a", 2)), {"definitions": {}} if custom_schema else None)


def test_a_custom_openapi_schema_is_read_alone_as_the_binary_reads_it(tmp_path, pool):
    """The worker parses the built-in schema when it starts; a build with a schema of its own must not see it."""
    plain = _deployment_project(tmp_path / "plain", custom_schema=False)
    custom = _deployment_project(tmp_path / "custom", custom_schema=True)
    binary = find_kustomize(PROJECT)
    outputs = [pool.build(folder) for folder in (plain, custom, custom, plain)]
    assert re.findall(r"image: (\S+)", outputs[0]) == ["a:2", "b:1"]
    assert re.findall(r"image: (\S+)", outputs[1]) == ["a:2"]
    assert outputs == [kustomize_build(binary, folder) for folder in (plain, custom, custom, plain)]


def test_a_failed_build_names_its_folder_and_the_worker_goes_on(tmp_path, pool):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n- missing.yaml\n")
    with pytest.raises(BuildError) as raised:
        pool.build(broken)
    with pytest.raises(BuildError) as from_binary:
        kustomize_build(find_kustomize(PROJECT), broken)
    assert str(raised.value) == str(from_binary.value)
    assert f"kustomize build {broken} failed" in str(raised.value) and "missing.yaml" in str(raised.value)
    good = _widget_project(tmp_path / "good", custom_schema=False)
    assert pool.build(good) == kustomize_build(find_kustomize(PROJECT), good)


def test_a_worker_that_dies_is_reported_with_what_it_said(tmp_path):
    program = tmp_path / "dying-worker"
    program.write_text("#!/bin/sh\nread directory\necho \"cannot go on with $directory\" >&2\nexit 3\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    workers = KustomizePool(str(program))
    with pytest.raises(BuildError, match=r"kustomize-worker stopped while building /some/where: cannot go on with /some/where"):
        workers.build(Path("/some/where"))
    workers.close()


def test_the_worker_is_built_against_the_pinned_kustomize():
    go_mod = (PROJECT / "tools" / "kustomize-worker" / "go.mod").read_text()
    makefile = (PROJECT / "Makefile").read_text()
    assert re.search(rf"^\tsigs\.k8s\.io/kustomize/kustomize/v5 {re.escape(KUSTOMIZE_VERSION)}$", go_mod, re.MULTILINE)
    assert f"KUSTOMIZE_VERSION := {KUSTOMIZE_VERSION}" in makefile
