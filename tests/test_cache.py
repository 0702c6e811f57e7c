"""The build cache and the shared CRD layer: same objects as a direct build, corrupt entries rebuilt."""

from __future__ import annotations

import pytest

from helpers import PROJECT, shipped_spec
from kfgen.build import Builder, build_environment, split_crds
from kfgen.buildcache import BuildCache
from kfgen.errors import BuildError
from kfgen.kustomize import find_kustomize, kustomize_build
from kfgen.yamlio import load_all_plain


class AskedCache(BuildCache):
    """The build cache, noting every key asked for."""

    def __init__(self, directory):
        super().__init__(directory)
        self.asked: list[str] = []

    def get_bytes(self, key):
        self.asked.append(key)
        return super().get_bytes(key)


def _key(obj):
    return (obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])


def test_split_crds_keeps_every_document():
    text = ("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n"
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: x.example.com\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  kind: CustomResourceDefinition\n")
    crds, rest = split_crds(text)
    assert [o["kind"] for o in load_all_plain(crds)] == ["CustomResourceDefinition"]
    assert [o["kind"] for o in load_all_plain(rest)] == ["Namespace", "ConfigMap"]


def test_patches_of_generated_config_are_built_directly():
    """A ConfigMap a generator named with a hash is known to a prebuilt base by that name only: an overlay
    that patches or selects it builds directly; one that patches a plain ConfigMap builds on the base."""
    from kfgen.build import _generated_config, _patches_generated

    base = ("apiVersion: v1\ndata:\n  name: not-the-name\nkind: ConfigMap\nmetadata:\n  name: app-config-9c2fbg2gdc\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-deployment\n---\n"
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-4b8cd2f6hk\n")
    generated = _generated_config(base)
    assert generated == [("ConfigMap", "app-config")]

    def overlay(kustomization: str, *patch_files: tuple[str, str]) -> list[tuple[str, bytes]]:
        return [("kustomization.yaml", kustomization.encode()), *((n, t.encode()) for n, t in patch_files)]

    plain = overlay("patches:\n- path: p.yaml\n  target: {kind: ConfigMap, name: ^config-deployment$}\n")
    assert not _patches_generated(plain, generated)
    by_target = overlay("patches:\n- path: p.yaml\n  target: {kind: ConfigMap, name: ^app-config$}\n")
    assert _patches_generated(by_target, generated)
    by_name_only = overlay("patches:\n- path: p.yaml\n  target: {name: app-.*}\n")
    assert _patches_generated(by_name_only, generated)
    strategic = overlay("patches:\n- path: p.yaml\n", ("p.yaml", "kind: ConfigMap\nmetadata:\n  name: app-config\n"))
    assert _patches_generated(strategic, generated)
    replaced = overlay("replacements:\n- source: {kind: Deployment, name: app}\n  targets:\n  - select: {kind: ConfigMap}\n")
    assert _patches_generated(replaced, generated)
    elsewhere = overlay("replacements:\n- source: {kind: Deployment, name: app}\n  targets:\n  - select: {kind: PodDisruptionBudget}\n")
    assert not _patches_generated(elsewhere, generated)
    assert not _patches_generated(by_target, [])


@pytest.mark.slow  # builds each component twice, cold
def test_shared_crd_layer_builds_what_kustomize_builds_directly(make_project, tmp_path):
    project = make_project()
    project.vendor()
    project.render()
    builder = Builder(PROJECT, project.root, BuildCache(tmp_path / "cache"))
    plan = project.plan()
    env = plan.environment("prod")
    for planned in env.components:
        direct = load_all_plain(kustomize_build(find_kustomize(PROJECT), project.root / "overlays/prod" / planned.name))
        shared = builder.overlay("prod", planned.name).text
        assert sorted(direct, key=_key) == sorted(load_all_plain(shared), key=_key), planned.name


@pytest.mark.slow  # cold builds into a cache of its own
def test_second_build_is_served_from_the_cache_and_corrupt_entries_are_rebuilt(make_project, tmp_path):
    project = make_project()
    project.vendor()
    project.render()
    env = project.plan().environment("local")
    cache = BuildCache(tmp_path / "cache")
    first = build_environment(PROJECT, env, tree=project.root, cache=cache)
    assert not any(c.cached for c in first.components)
    again_cache = AskedCache(tmp_path / "cache")
    second = build_environment(PROJECT, env, tree=project.root, cache=again_cache)
    assert all(c.cached for c in second.components)
    assert [c.text for c in second.components] == [c.text for c in first.components]
    # Damage an entry that building reads: it must be noticed, dropped and rebuilt, never served.
    entry = again_cache._path(again_cache.asked[0])
    entry.write_bytes(entry.read_bytes()[:-50])
    third_cache = BuildCache(tmp_path / "cache")
    third = build_environment(PROJECT, env, tree=project.root, cache=third_cache)
    assert third_cache.corrupt == 1
    assert [c.text for c in third.components] == [c.text for c in first.components]


@pytest.mark.slow  # cold builds into a cache of its own
def test_a_changed_setting_rebuilds_only_that_component(make_project, tmp_path):
    project = make_project()
    project.vendor()
    project.render()
    cache = BuildCache(tmp_path / "cache")
    build_environment(PROJECT, project.plan().environment("prod"), tree=project.root, cache=cache)
    spec = shipped_spec()
    spec["environments"][2]["components"]["model-registry"]["replicas"] = 3
    project.write_spec(spec)
    project.render()
    after = build_environment(PROJECT, project.plan().environment("prod"), tree=project.root, cache=BuildCache(tmp_path / "cache"))
    rebuilt = [c.name for c in after.components if not c.cached]
    assert rebuilt == ["model-registry"]
    deployment = next(o for o in after.components[[c.name for c in after.components].index("model-registry")].objects
                      if o["kind"] == "Deployment" and o["metadata"]["name"] == "model-registry-deployment")
    assert deployment["spec"]["replicas"] == 3


@pytest.mark.slow  # cold builds into a cache of its own
def test_parsed_objects_are_kept_as_json_and_equal_the_yaml(make_project, tmp_path):
    project = make_project()
    project.vendor()
    project.render()
    env = project.plan().environment("local")
    first = build_environment(PROJECT, env, tree=project.root, cache=BuildCache(tmp_path / "cache"))
    parsed = [c.objects for c in first.components]  # parses YAML and stores JSON
    second = build_environment(PROJECT, env, tree=project.root, cache=BuildCache(tmp_path / "cache"))
    assert [c.objects for c in second.components] == parsed
    assert [load_all_plain(c.text) for c in second.components] == parsed


@pytest.mark.slow  # cold builds into a cache of its own
def test_a_warm_build_reads_a_bases_yaml_only_when_asked_for_it(make_project, tmp_path):
    """Objects come from the cached JSON; the YAML of bases (their CRDs, most of the bytes) stays unread
    until a component's text is wanted, and is then what a cold build gave."""
    project = make_project()
    project.vendor()
    project.render()
    env = project.plan().environment("local")
    cold = build_environment(PROJECT, env, tree=project.root, cache=BuildCache(tmp_path / "cache"))
    cache = AskedCache(tmp_path / "cache")
    with Builder(PROJECT, project.root, cache) as builder:
        warm = build_environment(PROJECT, env, tree=project.root, builder=builder)
        bases = {builder.base_key(c.name) for c in warm.components if (project.root / "base" / c.name).is_dir()}
        assert len(bases) > 20 and all(c.cached for c in warm.components)
        assert [c.objects for c in warm.components] == [c.objects for c in cold.components]
        assert not bases & set(cache.asked)
        before = set(cache.asked)
        assert [c.text for c in warm.components] == [c.text for c in cold.components]
        read_for_text = set(cache.asked) - before
        assert len(read_for_text) > 20 and read_for_text <= bases  # overlays built on their own need no base


def test_a_closed_builder_builds_nothing(make_project, tmp_path):
    project = make_project()
    project.vendor()
    project.render()
    builder = Builder(PROJECT, project.root, None)
    builder.close()
    with pytest.raises(BuildError, match="kustomize workers have stopped"):
        builder.overlay("local", "dex")
