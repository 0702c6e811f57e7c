"""Bring your own: a component the cluster provides is not installed, its dependents are satisfied, its
CRDs come from the source cache for the checks (and a cache without them is an error of the spec); an
existing ClusterIssuer or an ACME DNS-01 solver signs the gateway's certificate; and every shipped
environment passes the API server's dry run with its prerequisites and provided CRDs in place."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from helpers import PROJECT, TempProject, shipped_spec, source_cache_dirs
from kfgen.apply import Cluster, apply_environment
from kfgen.credentials import prerequisite_files
from kfgen.objects.checks import check_environment
from kfgen.objects.crds import load_prerequisite_crds
from kfgen.objects.provided import provided_crds
from kfgen.sources import SourceCache

RELEASE = "26.03"


def _objects(build: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, o) for c in build.components for o in c.objects]


def test_staging_uses_the_clusters_cert_manager_and_still_checks_its_kinds(built):
    build = built(RELEASE, "staging")
    assert "cert-manager" not in {c.name for c in build.components}
    objects = _objects(build)
    assert not [o for _, o in objects if o["kind"] == "CustomResourceDefinition" and o["spec"]["group"].endswith("cert-manager.io")]
    certificates = [(c, o) for c, o in objects if o["kind"] == "Certificate"]
    assert {c for c, _ in certificates} >= {"kubeflow-istio-resources", "katib", "kserve"}
    project: TempProject = built.projects[(RELEASE, False)]
    plan = project.plan()
    env_plan = plan.environment("staging")
    provided = provided_crds(plan, env_plan, SourceCache(source_cache_dirs()))
    assert {c["metadata"]["name"] for c in provided.crds} == set(plan.catalog.components["cert-manager"].releases[RELEASE].crds)
    # With the provided CRDs, every Certificate and Issuer is validated against them; without, none could be.
    assert check_environment(build, plan, provided_crds=provided.crds).findings == ()
    unchecked = check_environment(build, plan).findings
    assert {f.kind for f in unchecked} >= {"Certificate", "Issuer"} and all(f.check == "schema" for f in unchecked)
    # Argo CD deploys no cert-manager Application in staging.
    assert not (PROJECT / "gitops" / "staging" / "apps" / "cert-manager.yaml").exists()
    assert (PROJECT / "gitops" / "prod" / "apps" / "cert-manager.yaml").exists()


def test_staging_answers_acme_with_dns01_in_route53(built):
    [issuer] = [o for _, o in _objects(built(RELEASE, "staging")) if o["kind"] == "ClusterIssuer"]
    assert issuer["spec"]["acme"]["solvers"] == [{"dns01": {"route53": {"region": "eu-west-1"}}}]
    [prod_issuer] = [o for _, o in _objects(built(RELEASE, "prod")) if o["kind"] == "ClusterIssuer" and "acme" in o["spec"]]
    assert prod_issuer["spec"]["acme"]["solvers"] == [{"http01": {"ingress": {"ingressClassName": "istio"}}}]


def test_a_cluster_issuer_signs_the_gateway_certificate(make_project):
    spec = copy.deepcopy(shipped_spec())
    local = next(e for e in spec["environments"] if e["name"] == "local")
    local["tls"] = {"mode": "clusterIssuer", "clusterIssuer": "corp-ca"}
    local["components"] = {"cert-manager": {"provided": True}}
    project: TempProject = make_project(spec)
    project.vendor()
    project.render()
    objects = _objects(project.build("local"))
    [gateway] = [o for _, o in objects if o["kind"] == "Certificate" and o["metadata"]["name"] == "kubeflow-gateway"]
    assert gateway["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "group": "cert-manager.io", "name": "corp-ca"}
    assert not [o for _, o in objects if o["kind"] == "ClusterIssuer"]
    result = project.kfgen("check", "--env", "local")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_a_provided_component_whose_crds_the_cache_lacks_is_an_error_of_the_spec(make_project):
    project: TempProject = make_project()
    entry = project.root / "components" / "cert-manager" / "component.yaml"
    catalog = yaml.safe_load(entry.read_text())
    catalog["releases"][RELEASE]["crds"].append("widgets.cert-manager.io")
    entry.write_text(yaml.safe_dump(catalog, sort_keys=False))
    project.vendor()
    project.render()
    result = project.kfgen("check", "--env", "staging")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    line = next(n for n, text in enumerate(project.spec_path.read_text().splitlines(), 1) if "provided: true" in text)
    assert f"platform.yaml:{line}:" in result.stderr and "environments[1].components.cert-manager.provided: 'cert-manager' is " \
           "provided by the cluster in environment 'staging', but the source caches have no widgets.cert-manager.io" in result.stderr


def test_disabling_a_dependency_points_at_provided(make_project):
    spec = copy.deepcopy(shipped_spec())
    spec["environments"][0]["components"] = {"istio": {"enabled": False}}
    result = make_project(spec).kfgen("validate")
    assert result.returncode == 2 and "write provided: true instead" in result.stderr, result.stderr


@pytest.mark.parametrize("env", ["local", "staging", "prod"])
def test_every_environment_passes_server_side_dry_run(built, control_plane, env):
    build = built(RELEASE, env)
    project: TempProject = built.projects[(RELEASE, False)]
    plan = project.plan()
    env_plan = plan.environment(env)
    cluster = Cluster(control_plane.kubeconfig)
    # What the cluster brings before the platform: its operators' CRDs and the components it provides.
    before = load_prerequisite_crds(prerequisite_files(env_plan.environment))
    before += list(provided_crds(plan, env_plan, SourceCache(source_cache_dirs())).crds)
    for crd in before:
        cluster.apply(crd, dry_run=False)
    cluster.wait_established([crd["metadata"]["name"] for crd in before])
    report = apply_environment(cluster, build, dry_run=True)
    assert [r.format() for r in report.rejections] == []
    assert len(report.actions) == len(build.objects)


def _gateway_service(build: Any) -> dict[str, Any]:
    return next(o for _, o in _objects(build) if o["kind"] == "Service" and o["metadata"]["name"] == "istio-ingressgateway")


def test_the_gateway_service_takes_the_load_balancers_settings(built):
    staging, prod, local = (_gateway_service(built(RELEASE, env)) for env in ("staging", "prod", "local"))
    assert staging["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal"
    assert staging["spec"]["type"] == "LoadBalancer"
    assert staging["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert staging["spec"]["externalTrafficPolicy"] == "Local"
    # Where the spec says nothing: upstream's behaviour (every source, cluster-wide routing).
    assert "loadBalancerSourceRanges" not in prod["spec"] and prod["spec"]["externalTrafficPolicy"] == "Cluster"
    assert "service.beta.kubernetes.io/aws-load-balancer-scheme" not in (prod["metadata"].get("annotations") or {})
    assert local["spec"]["type"] == "ClusterIP" and "externalTrafficPolicy" not in local["spec"]
