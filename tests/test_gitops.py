"""GitOps objects: Argo CD and Flux, ordered by the dependency graph."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import PROJECT, run_kfgen, shipped_spec
from kfgen.catalog import load_catalog
from kfgen.plan import make_plan
from kfgen.render import render
from kfgen.spec import resolve
from kfgen.yamlio import parse

CATALOG = load_catalog(PROJECT / "components")


def _files(spec) -> dict[str, object]:
    plan = make_plan(resolve(parse(yaml.safe_dump(spec), "platform.yaml"), CATALOG), CATALOG)
    return {path: list(yaml.safe_load_all(data)) for path, data in render(plan).files.items() if path.startswith("gitops/")}


def _spec(engine: str, **extra):
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"] = {"engine": engine, "repoURL": "https://git.example.com/platform.git", **extra}
    return spec


def _providers(env: str, spec) -> dict[str, set[str]]:
    """For each component, the components providing CRDs, webhooks and namespaces it needs (its dependsOn closure)."""
    plan = make_plan(resolve(parse(yaml.safe_dump(spec), "platform.yaml"), CATALOG), CATALOG)
    enabled = {p.name for p in plan.environment(env).components}
    closure: dict[str, set[str]] = {}

    def deps(name: str) -> set[str]:
        if name not in closure:
            direct = {d for d in CATALOG.components[name].depends_on if d in enabled}
            closure[name] = direct.union(*(deps(d) for d in direct)) if direct else set()
        return closure[name]

    return {name: deps(name) for name in enabled}


def test_argocd_waves_follow_the_dependency_graph():
    spec = _spec("argocd")
    files = _files(spec)
    for env in ("local", "staging", "prod"):
        apps = {doc["metadata"]["labels"]["kfgen.dev/component"]: doc for path, docs in files.items()
                if path.startswith(f"gitops/{env}/apps/") and path.endswith(".yaml") and "kustomization" not in path
                for doc in docs}
        assert len(apps) == 27
        wave = {name: int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for name, app in apps.items()}
        for name, providers in _providers(env, spec).items():
            for provider in providers:
                assert wave[provider] < wave[name], (env, provider, name)
        for app in apps.values():
            assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
            assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
            assert app["spec"]["syncPolicy"]["retry"]["backoff"]["factor"] == 2
            assert app["spec"]["source"]["path"] == f"overlays/{env}/{app['metadata']['labels']['kfgen.dev/component']}"
            kinds = {d["kind"] for d in app["spec"]["ignoreDifferences"]}
            assert {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} <= kinds


def test_argocd_project_allows_only_what_the_platform_uses():
    files = _files(_spec("argocd"))
    project = files["gitops/prod/project.yaml"][0]
    assert project["spec"]["sourceRepos"] == ["https://git.example.com/platform.git"]
    servers = {d["server"] for d in project["spec"]["destinations"]}
    assert servers == {"https://prod.gke.example.com", "https://kubernetes.default.svc"}
    namespaces = {d["namespace"] for d in project["spec"]["destinations"]}
    assert {"kubeflow", "istio-system", "auth", "argocd"} <= namespaces and "default" not in namespaces
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    assert ("apiextensions.k8s.io", "CustomResourceDefinition") in allowed
    assert ("kubeflow.org", "Profile") in allowed
    assert not any(k["kind"] == "*" for k in project["spec"]["clusterResourceWhitelist"])
    cm = files["gitops/prod/argocd-cm.yaml"][0]
    assert "resource.customizations.health.argoproj.io_Application" in cm["data"]
    root = files["gitops/prod/root.yaml"][0]
    assert root["spec"]["source"]["path"] == "gitops/prod/apps"


def test_flux_depends_on_follows_the_graph_and_uses_the_remote_cluster():
    spec = _spec("flux", sopsSecret="sops-age", revision="release")
    files = _files(spec)
    for env in ("local", "prod"):
        kustomizations = {doc["metadata"]["labels"]["kfgen.dev/component"]: doc
                          for path, docs in files.items() for doc in docs
                          if path.startswith(f"gitops/{env}/") and doc["kind"] == "Kustomization"
                          and doc["apiVersion"].startswith("kustomize.toolkit.fluxcd.io")}
        assert len(kustomizations) == 27
        for name, doc in kustomizations.items():
            depends = {d["name"].removeprefix(f"{env}-") for d in doc["spec"].get("dependsOn", [])}
            assert depends == {d for d in CATALOG.components[name].depends_on}
            assert doc["spec"]["prune"] and doc["spec"]["wait"]
            assert doc["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
            assert ("kubeConfig" in doc["spec"]) == (env == "prod")
        source = files[f"gitops/{env}/source.yaml"][0]
        assert source["spec"]["ref"] == {"branch": "release"}


def test_engine_none_renders_no_gitops_files():
    assert _files(_spec("none")) == {}


def test_hydrated_mode_syncs_rendered_yaml():
    files = _files(_spec("flux", hydrated=True, path="platform"))
    doc = files["gitops/local/pipelines.yaml"][0]
    assert doc["spec"]["path"] == "./platform/rendered/local/pipelines"


def test_graph_command_draws_waves():
    result = run_kfgen("graph", "--env", "prod", cwd=PROJECT)
    assert result.returncode == 0
    assert result.stdout.startswith("flowchart LR")
    assert "  istio --> oauth2-proxy" in result.stdout
    dot = run_kfgen("graph", "--format", "dot", cwd=PROJECT)
    assert dot.returncode == 0 and '"cert-manager" -> "istio"' not in dot.stdout and '"istio-crds" -> "istio"' in dot.stdout


@pytest.mark.parametrize(("gitops", "message"), [
    ({"engine": "argocd"}, "gitops engine 'argocd' needs repoURL"),
    ({"engine": "argocd", "repoURL": "https://git.example.com/p.git", "sopsSecret": "s"}, "SOPS decryption is a Flux feature"),
])
def test_gitops_spec_errors(make_project, gitops, message):
    spec = shipped_spec()
    spec["gitops"] = gitops
    project = make_project(spec)
    result = project.kfgen("validate")
    assert result.returncode == 2 and message in result.stderr


def test_hydrate_writes_plain_yaml_per_component(make_project):
    project = make_project()
    project.vendor()
    assert project.kfgen("render").returncode == 0
    result = project.kfgen("hydrate", "--env", "local")
    assert result.returncode == 0, result.stderr
    rendered = project.root / "rendered" / "local"
    components = sorted(p.name for p in rendered.iterdir())
    assert len(components) == 27 and "pipelines" in components
    text = (rendered / "pipelines" / "manifests.yaml").read_text()
    assert text.startswith("# Generated by kfgen hydrate from platform.yaml")
    assert "kind: Deployment" in text and "name: ml-pipeline\n" in text
    assert not [p for p in (project.root / "rendered").iterdir() if p.name.startswith(".")]
