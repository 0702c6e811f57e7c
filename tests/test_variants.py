"""Cloud variants: each environment builds the upstream variant its cluster's provider needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import PROJECT, TempProject, source_cache_dirs, spec_for_release
from kfgen.catalog import load_catalog
from kfgen.publish import overlay_files
from kfgen.variants import chosen_variant

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


def _m2m_issuers(build) -> list[str]:
    return [rule["issuer"] for o in build.objects
            if o["kind"] == "RequestAuthentication" and o["metadata"]["name"] == "m2m-token-issuer"
            for rule in o["spec"]["jwtRules"]]


@pytest.mark.parametrize("release", RELEASES)
def test_eks_accepts_service_account_tokens_from_its_cluster_issuer(built, release):
    # staging runs on EKS: upstream's m2m-dex-and-eks overlay, with the spec's issuer in place of its placeholder.
    staging = next(e for e in spec_for_release(release)["environments"] if e["name"] == "staging")
    assert staging["cluster"]["provider"] == "eks"
    issuer = staging["components"]["oauth2-proxy"]["settings"]["clusterTokenIssuer"]
    assert _m2m_issuers(built(release, "staging")) == [issuer]
    parameters = next(o for o in built(release, "staging").objects
                      if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("oauth2-proxy-parameters"))
    assert parameters["data"]["FORCE_HTTPS"] == "true"
    # kind and GKE keep upstream's Dex-only overlay: no machine-to-machine issuer at the gateway.
    assert _m2m_issuers(built(release, "local")) == [] and _m2m_issuers(built(release, "prod")) == []


def test_no_kind_variant_while_upstream_runs_its_jwks_proxy_from_an_unpinned_image():
    # The kind overlay's cluster-jwks-proxy image has only a `latest` tag upstream, which the pinned-images
    # policy refuses; once upstream pins it, the catalog can offer m2m-dex-and-kind for kind clusters.
    catalog = load_catalog(PROJECT / "components")
    for release in catalog.components["oauth2-proxy"].releases:
        assert chosen_variant(catalog.components["oauth2-proxy"], release, "kind", {}) is None
        folder = next(cache / "github.com/kubeflow/manifests" / release / "common/oauth2-proxy/components/cluster-jwks-proxy"
                      for cache in source_cache_dirs())
        images = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))["images"]
        assert [i.get("newTag") for i in images if "kubectl" in i["name"]] == ["latest"], release


def test_a_variant_cannot_require_a_setting_the_component_lacks(project):
    entry = project.root / "components/oauth2-proxy/component.yaml"
    entry.write_text(entry.read_text(encoding="utf-8").replace("requiredSettings: [clusterTokenIssuer]",
                                                               "requiredSettings: [clusterIssuer]"), encoding="utf-8")
    result = project.kfgen("validate")
    assert result.returncode == 2
    assert "requiredSettings[0]: no setting 'clusterIssuer' in this component's settings" in result.stderr
