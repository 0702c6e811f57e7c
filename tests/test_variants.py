"""Cloud variants: each environment builds the upstream variant its cluster's provider needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import PROJECT, TempProject, source_cache_dirs, spec_for_release
from kfgen.catalog import load_catalog
from kfgen.publish import overlay_files

RELEASES = ["26.03", "v1.11.0"]


def _cni_bin_dir(build) -> str:
    daemonset = next(o for o in build.objects if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "istio-cni-node")
    volume = next(v for v in daemonset["spec"]["template"]["spec"]["volumes"] if v["name"] == "cni-bin-dir")
    return volume["hostPath"]["path"]


@pytest.mark.parametrize("release", RELEASES)
def test_each_environment_gets_the_istio_cni_directory_of_its_provider(built, release):
    # GKE mounts /opt/cni/bin read-only: prod (gke) installs the plugin where GKE allows, the others keep upstream's.
    assert _cni_bin_dir(built(release, "prod")) == "/home/kubernetes/bin"
    assert _cni_bin_dir(built(release, "staging")) == "/opt/cni/bin"
    assert _cni_bin_dir(built(release, "local")) == "/opt/cni/bin"


@pytest.mark.parametrize("release", RELEASES)
def test_a_base_per_variant_in_use_and_the_default_base_unchanged(built, release):
    built(release, "local")
    root: Path = built.projects[(release, False)].root
    assert (root / "base/istio/kustomization.yaml").is_file()
    assert "overlays/gke" in (root / "base/istio.gke/kustomization.yaml").read_text()
    assert "overlays/oauth2-proxy" in (root / "base/istio/kustomization.yaml").read_text()
    for env, base in (("local", "istio"), ("staging", "istio"), ("prod", "istio.gke")):
        assert f"- ../../../base/{base}\n" in (root / f"overlays/{env}/istio/kustomization.yaml").read_text()


def test_no_variant_base_when_no_environment_needs_it(tmp_path):
    spec = spec_for_release("26.03")
    spec["environments"] = [e for e in spec["environments"] if e["name"] != "prod"]
    spec["profiles"] = [dict(p, environments=["staging"]) if "environments" in p else p for p in spec["profiles"]]
    project = TempProject(tmp_path / "project", spec)
    project.render()
    assert not (project.root / "base/istio.gke").exists()
    assert all("overlays/gke" not in root.path for root in project.plan().source_roots)


def test_vendoring_and_the_deploy_branch_follow_the_variant_base(tmp_path):
    project = TempProject(tmp_path / "project", spec_for_release("26.03"))
    assert any(root.path == "common/istio/istio-install/overlays/gke" for root in project.plan().source_roots)
    project.vendor()
    project.render()
    plan = project.plan()
    prod = overlay_files(project.root, plan.environment("prod"))
    local = overlay_files(project.root, plan.environment("local"))
    assert "base/istio.gke/kustomization.yaml" in prod and "base/istio/kustomization.yaml" not in prod
    assert "base/istio/kustomization.yaml" in local and "base/istio.gke/kustomization.yaml" not in local
    assert any(path.startswith("vendor/github.com/kubeflow/manifests/26.03/common/istio/istio-install/components/gke-cni/")
               for path in prod)


def test_every_variant_builds_on_paths_upstream_ships():
    catalog = load_catalog(PROJECT / "components")
    caches = source_cache_dirs()
    checked = 0
    for component in catalog.components.values():
        for release, source in component.releases.items():
            for variant in source.variants:
                for root in source.with_variant(variant).roots:
                    assert any((cache / root.relpath / "kustomization.yaml").is_file() for cache in caches), (component.name, release, root)
                    checked += 1
    assert checked >= 2
