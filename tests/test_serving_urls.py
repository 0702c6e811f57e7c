"""Serving URLs: InferenceServices and Knative routes on the environment's domain, over https."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from helpers import PROJECT, TempProject, source_cache_dirs, spec_for_release
from kfgen.embedded import with_json_fields
from kfgen.errors import BuildError
from kfgen.mirror import rewrite_text

RELEASES = ["26.03", "v1.11.0"]
ENVIRONMENTS = ["local", "staging", "prod"]


def _config_map(build, component: str, name: str) -> dict:
    objects = next(c for c in build.components if c.name == component).objects
    return next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name)


def _upstream_objects(release: str, path: str) -> list[dict]:
    """What upstream's own kustomization builds, from the source cache (the real kustomize)."""
    root = next(cache / "github.com/kubeflow/manifests" / release / path for cache in source_cache_dirs()
                if (cache / "github.com/kubeflow/manifests" / release / path).is_dir())
    kustomize = os.environ.get("KFGEN_KUSTOMIZE") or shutil.which("kustomize") or "kustomize"
    text = subprocess.run([kustomize, "build", str(root)], capture_output=True, text=True, check=True).stdout
    return [o for o in yaml.safe_load_all(text) if o]


def _go_template(template: str, values: dict[str, str]) -> str:
    """KServe's domainTemplate with its {{ .Field }} placeholders filled, as Go's text/template would."""
    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: values[m.group(1)], template)


@pytest.mark.parametrize("release", RELEASES)
def test_inference_service_hosts_are_on_the_environment_domain_over_https(built, release):
    environments = {e["name"]: e for e in spec_for_release(release)["environments"]}
    domains = {name: e["domain"] for name, e in environments.items()}
    upstream = next(o for o in _upstream_objects(release, "applications/kserve/kserve")
                    if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "inferenceservice-config")
    upstream_ingress = json.loads(upstream["data"]["ingress"])
    for env in ENVIRONMENTS:
        config = _config_map(built(release, env), "kserve", "inferenceservice-config")
        ingress = json.loads(config["data"]["ingress"])
        assert ingress["ingressDomain"] == domains[env] and ingress["urlScheme"] == "https", env
        host = _go_template(ingress["domainTemplate"], {"Name": "sklearn-iris", "Namespace": "ml-research",
                                                        "IngressDomain": ingress["ingressDomain"]})
        assert host == f"sklearn-iris-ml-research.{domains[env]}", env
        # Only the domain and scheme change; the rest of the ingress settings and every other key are upstream's.
        assert {k: v for k, v in ingress.items() if k not in ("ingressDomain", "urlScheme")} == \
               {k: v for k, v in upstream_ingress.items() if k not in ("ingressDomain", "urlScheme")}
        assert upstream_ingress["ingressDomain"] == "example.com" and upstream_ingress["urlScheme"] == "http"
        # (through the environment's mirror; staging's deploy key is its RawDeployment mode, test_serving_mode.py)
        mirror = environments[env].get("registryMirror")
        assert {k: v for k, v in config["data"].items() if k not in ("ingress", "deploy")} == \
               {k: rewrite_text(v, mirror, {}) if mirror else v for k, v in upstream["data"].items() if k not in ("ingress", "deploy")}
    if release == "26.03":  # path-based URLs (upstream's pathTemplate) stay under the same host
        assert "pathTemplate" in upstream_ingress


@pytest.mark.parametrize("release", RELEASES)
def test_knative_routes_are_on_the_environment_domain_over_https(built, release):
    domains = {e["name"]: e["domain"] for e in spec_for_release(release)["environments"]}
    upstream = {o["metadata"]["name"]: o for o in _upstream_objects(release, "common/knative/knative-serving/overlays/gateways")
                if o["kind"] == "ConfigMap"}
    assert "example.com" in upstream["config-domain"]["data"]
    for env in ENVIRONMENTS:
        build = built(release, env)
        if "knative-serving" not in {c.name for c in build.components}:
            assert env == "staging"  # models run as plain Deployments there (RawDeployment), without Knative
            continue
        domain = _config_map(build, "knative-serving", "config-domain")["data"]
        # The environment's domain is the only one, for every route (no selector); example.com is gone.
        assert sorted(domain) == sorted(["_example", domains[env]]) and domain[domains[env]] == "", env
        assert domain["_example"] == upstream["config-domain"]["data"]["_example"]
        network = _config_map(build, "knative-serving", "config-network")["data"]
        assert network["default-external-scheme"] == "https", env
        assert network.get("external-domain-tls", "Disabled") == "Disabled"  # the gateway's TLS, not Knative's


def test_a_changed_upstream_ingress_fails_the_build(tmp_path):
    # The patch tests upstream's exact text: a KServe release with other ingress settings must not be overwritten.
    project = TempProject(tmp_path / "project", spec_for_release("26.03"))
    project.vendor()
    project.render()
    source = project.root / "vendor/github.com/kubeflow/manifests/26.03/applications/kserve/kserve/kustomization.yaml"
    text = source.read_text(encoding="utf-8")
    assert '"urlScheme": "http",' in text
    source.write_text(text.replace('"urlScheme": "http",', '"urlScheme": "https",'), encoding="utf-8")
    with pytest.raises(BuildError, match=r"overlays/local/kserve failed:\n.*testing value /data/ingress failed"):
        project.build("local")


def test_embedded_json_edits_keep_upstream_layout_and_refuse_unknown_fields():
    text = '{\n  "ingressDomain": "example.com",\n  "urlScheme": "http"\n}'
    assert with_json_fields(text, {"urlScheme": "https"}) == '{\n  "ingressDomain": "example.com",\n  "urlScheme": "https"\n}'
    with pytest.raises(ValueError, match="no field 'domain'"):
        with_json_fields(text, {"domain": "x"})
    with pytest.raises(ValueError, match="reformat"):
        with_json_fields('{"urlScheme": "http"}', {"urlScheme": "https"})


def test_the_ingress_template_has_upstream_text_for_every_kserve_release():
    # The kserve template's upstream texts are the release's own (test_inference_service_hosts... builds them);
    # here: the catalog lists them for every release kserve supports.
    text = (PROJECT / "components/kserve/ingress-config.yaml.j2").read_text(encoding="utf-8")
    catalog_releases = yaml.safe_load((PROJECT / "components/kserve/component.yaml").read_text(encoding="utf-8"))["releases"]
    for release in catalog_releases:
        assert f'platform.kubeflowVersion == "{release}"' in text
