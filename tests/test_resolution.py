"""Settings resolve as catalog defaults <- platform-wide <- environment, by deep merge."""

from __future__ import annotations

import copy

import yaml

from helpers import PROJECT, shipped_spec
from kfgen.catalog import load_catalog
from kfgen.plan import make_plan
from kfgen.render import render
from kfgen.resolve import deep_merge, resolve
from kfgen.yamlio import parse

CATALOG = load_catalog(PROJECT / "components")


def _resolve(spec):
    return resolve(parse(yaml.safe_dump(spec), "platform.yaml"), CATALOG)


def test_deep_merge_merges_mappings_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    merged = deep_merge(base, {"a": {"y": [3], "z": 2}, "c": 3})
    assert merged == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1, "c": 3}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


def test_catalog_default_then_platform_then_environment():
    spec = copy.deepcopy(shipped_spec())
    spec["components"]["istio"] = {"settings": {"ingressServiceType": "NodePort"}}
    spec["environments"][2].setdefault("components", {})["istio"] = {"settings": {"ingressServiceType": "LoadBalancer"}}
    platform = _resolve(spec)
    local, _staging, prod = platform.environments
    gateway = {"ingressServiceAnnotations": {}, "loadBalancerSourceRanges": [], "externalTrafficPolicy": "Cluster"}  # defaults
    assert local.components["istio"].settings == {**gateway, "ingressServiceType": "NodePort", "mtls": "STRICT"}  # platform-wide
    assert prod.components["istio"].settings == {**gateway, "ingressServiceType": "LoadBalancer", "mtls": "STRICT"}  # environment wins
    assert _resolve(shipped_spec()).environments[0].components["istio"].settings == {**gateway, "ingressServiceType": "auto", "mtls": "STRICT"}


def test_enabled_resolves_from_catalog_default_and_overrides():
    spec = copy.deepcopy(shipped_spec())
    spec["environments"][0]["components"] = {"model-registry": {"enabled": False}, "katib": {"enabled": False}}
    local, staging, _ = _resolve(spec).environments
    assert not local.components["model-registry"].enabled  # platform enabled it, local turns it off
    assert staging.components["model-registry"].enabled
    assert not local.components["katib"].enabled and staging.components["katib"].enabled
    assert not staging.components["knative-eventing"].enabled  # optional upstream: off by default


def test_component_replicas_override_environment_sizing():
    plan = make_plan(_resolve(shipped_spec()), CATALOG)
    files = render(plan).files
    prod_registry = yaml.safe_load(files["overlays/prod/model-registry/replicas.yaml"].split(b"\n", 1)[1])
    prod_pipelines = yaml.safe_load(files["overlays/prod/pipelines/replicas.yaml"].split(b"\n", 1)[1])
    assert prod_registry["spec"]["replicas"] == 2  # components.model-registry.replicas in prod
    assert prod_pipelines["spec"]["replicas"] == 3  # prod's sizing.replicas


def test_registry_mirror_keeps_repository_paths():
    plan = make_plan(_resolve(shipped_spec()), CATALOG)
    kustomization = yaml.safe_load(render(plan).files["overlays/prod/pipelines/kustomization.yaml"])
    images = {i["name"]: i["newName"] for i in kustomization["images"]}
    assert images["ghcr.io/kubeflow/kfp-api-server"] == "registry.example.com/mirror/kubeflow/kfp-api-server"
    assert images["mysql"] == "registry.example.com/mirror/library/mysql"
    assert images["chrislusf/seaweedfs"] == "registry.example.com/mirror/chrislusf/seaweedfs"
    local = yaml.safe_load(render(plan).files["overlays/local/pipelines/kustomization.yaml"])
    assert "images" not in local  # no mirror in local


def test_explicit_image_pins_apply_after_the_mirror():
    spec = copy.deepcopy(shipped_spec())
    digest = "sha256:" + "a" * 64
    spec["components"]["dex"] = {"images": [{"name": "ghcr.io/dexidp/dex", "digest": digest}]}
    plan = make_plan(_resolve(spec), CATALOG)
    files = render(plan).files
    prod = yaml.safe_load(files["overlays/prod/dex/kustomization.yaml"])["images"]
    assert prod == [{"name": "ghcr.io/dexidp/dex", "newName": "registry.example.com/mirror/dexidp/dex", "digest": digest}]
    local = yaml.safe_load(files["overlays/local/dex/kustomization.yaml"])["images"]
    assert local == [{"name": "ghcr.io/dexidp/dex", "digest": digest}]


def test_dependency_order_puts_providers_first():
    plan = make_plan(_resolve(shipped_spec()), CATALOG)
    for env in plan.environments:
        position = {p.name: i for i, p in enumerate(env.components)}
        for planned in env.components:
            for dependency in planned.component.depends_on:
                if env.environment.components[dependency].provided:
                    continue  # the cluster has it before the platform
                assert position[dependency] < position[planned.name]
                wave = next(p.wave for p in env.components if p.name == dependency)
                assert wave < planned.wave
