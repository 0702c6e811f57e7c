"""GitOps objects: Argo CD and Flux, ordered by the dependency graph, following the deploy branch."""

from __future__ import annotations

import copy
import fnmatch
import os
import shutil
import subprocess
from typing import Any

import celpy
import lupa.lua51 as lua51
import pytest
import yaml

from helpers import PROJECT, run_kfgen, shipped_spec, source_cache_dirs, spec_for_release
from kfgen.build import EnvironmentBuild, build_tree
from kfgen.catalog import load_catalog
from kfgen.gitops import APPLICATION_HEALTH, CRD_HEALTH, HPA_HEALTH
from kfgen.kustomize import find_kustomize
from kfgen.objects import CLUSTER_SCOPED_BUILTINS, check_environment
from kfgen.objects.controllers import controller_crds, gitops_objects
from kfgen.plan import make_plan
from kfgen.refs import RemoteDir, parse_remote
from kfgen.render import render
from kfgen.resolve import resolve
from kfgen.sources import SourceCache
from kfgen.yamlio import load_all_plain, parse

CATALOG = load_catalog(PROJECT / "components")
ENVIRONMENTS = ("local", "staging", "prod")
MIRROR = "https://git.example.com/mirrors/kubeflow-manifests.git"


def _plan(spec):
    return make_plan(resolve(parse(yaml.safe_dump(spec), "platform.yaml"), CATALOG), CATALOG)


def _installed(spec, env: str) -> int:
    """How many components environment env installs (staging's cluster provides cert-manager)."""
    return len(_plan(spec).environment(env).components)


def _files(spec) -> dict[str, list[Any]]:
    return {path: list(yaml.safe_load_all(data)) for path, data in render(_plan(spec)).files.items() if path.startswith("gitops/")}


def _spec(engine: str, sources: dict[str, Any] | None = None, **extra):
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"] = {"engine": engine, "repoURL": "https://git.example.com/platform.git", **extra}
    if sources is not None:
        spec["sources"] = sources
    return spec


def _documents(files: dict[str, list[Any]], env: str, kind: str) -> list[dict[str, Any]]:
    return [doc for path, docs in files.items() if path.startswith(f"gitops/{env}/") for doc in docs
            if doc["kind"] == kind and doc["apiVersion"] != "kustomize.config.k8s.io/v1beta1"]


def _component_objects(files: dict[str, list[Any]], env: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["labels"]["kfgen.dev/component"]: doc for doc in _documents(files, env, kind)
            if "kfgen.dev/component" in doc["metadata"]["labels"]}


def _providers(env: str, spec) -> dict[str, set[str]]:
    """For each component, the components providing CRDs, webhooks and namespaces it needs (its dependsOn closure)."""
    plan = _plan(spec)
    enabled = {p.name for p in plan.environment(env).components}
    closure: dict[str, set[str]] = {}

    def deps(name: str) -> set[str]:
        if name not in closure:
            direct = {d for d in CATALOG.components[name].depends_on if d in enabled}
            closure[name] = direct.union(*(deps(d) for d in direct)) if direct else set()
        return closure[name]

    return {name: deps(name) for name in enabled}


# --- what the controllers follow ---


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_every_target_follows_the_environments_deploy_branch(engine):
    spec = _spec(engine)
    files = _files(spec)
    for env in ENVIRONMENTS:
        kinds = ("Application",) if engine == "argocd" else ("GitRepository",)
        targets = [doc for kind in kinds for doc in _documents(files, env, kind)]
        assert len(targets) == (1 + _installed(spec, env) if engine == "argocd" else 1)  # the root and each component, or the one source
        for doc in targets:
            revision = doc["spec"]["source"]["targetRevision"] if engine == "argocd" else doc["spec"]["ref"]["branch"]
            assert revision == f"deploy/{env}", (env, doc["metadata"]["name"])


def test_a_deploy_branch_template_and_syncing_from_the_revision():
    files = _files(_spec("argocd", deployBranch="platform/{env}/live"))
    assert {app["spec"]["source"]["targetRevision"] for app in _documents(files, "prod", "Application")} == {"platform/prod/live"}
    # Remote sources build from the revision branch itself: nothing needs publishing.
    files = _files(_spec("flux", sources={"mode": "remote"}, syncFrom="revision", revision="trunk"))
    for env in ENVIRONMENTS:
        assert _documents(files, env, "GitRepository")[0]["spec"]["ref"] == {"branch": "trunk"}


def test_http_repository_urls_are_accepted_as_given(make_project):
    url = "http://127.0.0.1:8080/ml-platform.git"
    files = _files(_spec("argocd", repoURL=url))
    assert {app["spec"]["source"]["repoURL"] for app in _documents(files, "local", "Application")} == {url}
    assert _documents(files, "local", "AppProject")[0]["spec"]["sourceRepos"] == [url]
    assert _documents(_files(_spec("flux", repoURL=url)), "local", "GitRepository")[0]["spec"]["url"] == url
    spec = shipped_spec()
    spec["gitops"]["repoURL"] = url
    assert make_project(spec).kfgen("validate").returncode == 0


# --- Argo CD ---


def test_argocd_waves_follow_the_dependency_graph():
    spec = _spec("argocd")
    files = _files(spec)
    for env in ENVIRONMENTS:
        apps = _component_objects(files, env, "Application")
        assert len(apps) == _installed(spec, env)
        wave = {name: int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) for name, app in apps.items()}
        for name, providers in _providers(env, spec).items():
            for provider in providers:
                assert wave[provider] < wave[name], (env, provider, name)
        for name, app in apps.items():
            assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
            assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
            assert app["spec"]["syncPolicy"]["retry"]["backoff"]["factor"] == 2
            assert app["spec"]["source"]["path"] == f"overlays/{env}/{name}"
            kinds = {d["kind"] for d in app["spec"]["ignoreDifferences"]}
            assert {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} <= kinds


def _permitted(project: dict[str, Any], server: str, namespace: str) -> bool:
    """Argo CD's rule: a destination is permitted when its server and its namespace each glob-match
    those of one of the project's destinations (an empty namespace matches only a pattern that matches
    the empty string)."""
    return any(fnmatch.fnmatchcase(server, d["server"]) and fnmatch.fnmatchcase(namespace, d["namespace"])
               for d in project["spec"]["destinations"])


def test_argocd_project_permits_every_applications_destination():
    spec = _spec("argocd")
    files = _files(spec)
    for env in ENVIRONMENTS:
        project = _documents(files, env, "AppProject")[0]
        apps = _documents(files, env, "Application")
        assert len(apps) == 1 + _installed(spec, env)
        for app in apps:
            assert app["spec"]["project"] == project["metadata"]["name"]
            destination = app["spec"]["destination"]
            assert destination.get("namespace"), app["metadata"]["name"]
            assert _permitted(project, destination["server"], destination["namespace"]), (env, app["metadata"]["name"], destination)
        component = _component_objects(files, env, "Application")["pipelines"]
        assert component["spec"]["destination"]["namespace"] == "kubeflow"
    # What Argo CD refused: an Application without a namespace, in a project of named namespaces.
    assert not _permitted(_documents(files, "local", "AppProject")[0], "https://kubernetes.default.svc", "")


def test_argocd_project_permits_the_namespace_of_every_built_object(built):
    """Argo CD checks each namespaced object's namespace against the project; an object without one
    would land in the Application's destination namespace, so none may lack it."""
    spec = spec_for_release("26.03")
    build: EnvironmentBuild = built("26.03", "local")
    project = _documents(_files(spec), "local", "AppProject")[0]
    server = project["spec"]["destinations"][0]["server"]
    custom_scopes = {(crd["spec"]["group"], crd["spec"]["names"]["kind"]): crd["spec"]["scope"]
                     for crd in build.objects if crd["kind"] == "CustomResourceDefinition"}
    allowed_kinds = {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    namespaced = 0
    for component in build.components:
        for obj in component.objects:
            group = obj["apiVersion"].rpartition("/")[0]
            key = (group, obj["kind"])
            if key in CLUSTER_SCOPED_BUILTINS or custom_scopes.get(key) == "Cluster":
                assert key in allowed_kinds, (component.name, key)
                continue
            namespaced += 1
            namespace = obj["metadata"].get("namespace", "")
            assert namespace, (component.name, obj["kind"], obj["metadata"]["name"])
            assert _permitted(project, server, namespace), (component.name, obj["kind"], obj["metadata"]["name"], namespace)
    assert namespaced > 300


def test_argocd_project_allows_only_what_the_platform_uses():
    files = _files(_spec("argocd"))
    project = files["gitops/prod/project.yaml"][0]
    assert project["spec"]["sourceRepos"] == ["https://git.example.com/platform.git"]
    servers = {d["server"] for d in project["spec"]["destinations"]}
    assert servers == {"https://prod.gke.example.com", "https://kubernetes.default.svc"}
    namespaces = {d["namespace"] for d in project["spec"]["destinations"]}
    assert {"kubeflow", "istio-system", "auth", "argocd"} <= namespaces and "default" not in namespaces
    assert not any("*" in d["namespace"] or "*" in d["server"] for d in project["spec"]["destinations"])
    allowed = {(k["group"], k["kind"]) for k in project["spec"]["clusterResourceWhitelist"]}
    assert ("apiextensions.k8s.io", "CustomResourceDefinition") in allowed
    assert ("kubeflow.org", "Profile") in allowed
    assert not any(k["kind"] == "*" for k in project["spec"]["clusterResourceWhitelist"])
    root = files["gitops/prod/root.yaml"][0]
    assert root["spec"]["source"]["path"] == "gitops/prod/apps"
    assert root["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "argocd"}


# --- Argo CD health, run by a real Lua 5.1 (the language of Argo CD's gopher-lua) ---


def _health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Run a health script as Argo CD does: only the base, package, table and (a safe) os libraries,
    the object in the global `obj`, a table returned."""
    runtime = lua51.LuaRuntime()
    runtime.execute("string, math, io, debug, coroutine = nil, nil, nil, nil, nil")
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script)
    return result["status"], result["message"]


def _conditions(*conditions: tuple[str, str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "x"}, "status": {"conditions": [
        {"type": kind, "status": status, "reason": reason, "message": f"{kind} {reason}"} for kind, status, reason in conditions]}}


def test_argocd_cm_carries_the_health_customizations():
    cm = _files(_spec("argocd"))["gitops/local/argocd-cm.yaml"][0]
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    assert cm["data"]["resource.customizations.health.argoproj.io_Application"] == APPLICATION_HEALTH
    assert cm["data"]["resource.customizations.health.autoscaling_HorizontalPodAutoscaler"] == HPA_HEALTH
    assert cm["data"]["resource.customizations.health.apiextensions.k8s.io_CustomResourceDefinition"] == CRD_HEALTH


@pytest.mark.parametrize(("conditions", "status"), [
    # kind without metrics-server: the controller reads the scale but no metric.
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "FailedGetResourceMetric")), "Healthy"),
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "FailedGetPodsMetric")), "Healthy"),
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "FailedGetExternalMetric")), "Healthy"),
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "FailedGetContainerResourceMetric")), "Healthy"),
    # Everything else keeps Argo CD's meaning.
    ((("AbleToScale", "False", "FailedGetScale"), ("ScalingActive", "False", "FailedGetResourceMetric")), "Degraded"),
    ((("ScalingActive", "False", "FailedGetResourceMetric"), ("AbleToScale", "False", "FailedUpdateScale")), "Degraded"),
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "False", "InvalidSelector")), "Degraded"),
    ((("AbleToScale", "True", "SucceededRescale"),), "Healthy"),
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "True", "ValidMetricFound"),
      ("ScalingLimited", "False", "DesiredWithinRange")), "Healthy"),
    ((("AbleToScale", "True", "SucceededGetScale"), ("ScalingActive", "True", "ValidMetricFound")), "Progressing"),
    ((), "Progressing"),
])
def test_hpa_health_passes_autoscalers_that_only_lack_metrics(conditions, status):
    assert _health(HPA_HEALTH, _conditions(*conditions))[0] == status


def test_hpa_health_of_an_autoscaler_without_status():
    assert _health(HPA_HEALTH, {"metadata": {"name": "x"}}) == ("Progressing", "Waiting to Autoscale")
    status, message = _health(HPA_HEALTH, _conditions(("ScalingActive", "False", "FailedGetResourceMetric")))
    assert status == "Healthy" and "ScalingActive FailedGetResourceMetric" in message


@pytest.mark.parametrize(("obj", "status"), [
    (_conditions(("NamesAccepted", "True", "NoConflicts"), ("Established", "True", "InitialNamesAccepted")), "Healthy"),
    # The API server has not served it yet: on its way, not broken.
    (_conditions(("NamesAccepted", "True", "NoConflicts"), ("Established", "False", "Installing")), "Progressing"),
    ({"metadata": {"name": "x"}}, "Progressing"),
    ({"metadata": {"name": "x"}, "status": {}}, "Progressing"),
    (_conditions(("NamesAccepted", "False", "MultipleConflicts"), ("Established", "False", "NotAccepted")), "Degraded"),
    ({**_conditions(("Established", "True", "InitialNamesAccepted")), "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}},
     "Progressing"),
])
def test_crd_health_reads_established_and_names_accepted(obj, status):
    assert _health(CRD_HEALTH, obj)[0] == status


def _application(target: str, compared: str | None, sync: str = "Synced", health: str = "Healthy", operation: dict | None = None) -> dict:
    status: dict = {"sync": {"status": sync, "revision": "c" * 40}, "health": {"status": health, "message": "m"}}
    if compared is not None:
        status["sync"]["comparedTo"] = {"source": {"targetRevision": compared}}
    if operation is not None:
        status["operationState"] = operation
    return {"metadata": {}, "spec": {"source": {"targetRevision": target}}, "status": status}


PINNED, BEFORE = "c" * 40, "b" * 40


@pytest.mark.parametrize(("app", "status"), [
    (_application(PINNED, PINNED), "Healthy"),
    (_application(PINNED, PINNED, health="Degraded"), "Degraded"),
    # The root has just applied the new pin: what the child shows is still about the commit before.
    (_application(PINNED, BEFORE), "Progressing"),
    (_application(PINNED, None), "Progressing"),
    (_application(PINNED, PINNED, sync="OutOfSync"), "Progressing"),
    (_application(PINNED, PINNED, operation={"phase": "Running", "message": "waiting"}), "Progressing"),
    # Its retries spent at this revision: the wave fails rather than waiting forever.
    (_application(PINNED, PINNED, sync="OutOfSync", operation={"phase": "Failed", "message": "denied", "syncResult": {"revision": PINNED}}),
     "Degraded"),
    # A failure at an earlier revision says nothing of this one.
    (_application(PINNED, PINNED, sync="OutOfSync", operation={"phase": "Failed", "syncResult": {"revision": BEFORE}}), "Progressing"),
    ({"metadata": {}}, "Progressing"),
    ({"metadata": {}, "status": {"health": {"status": "Healthy"}}}, "Progressing"),
])
def test_application_health_waits_for_the_child_to_sync_its_target(app, status):
    assert _health(APPLICATION_HEALTH, app)[0] == status


# --- Flux ---


def test_flux_root_prunes_the_components_kustomizations():
    spec = _spec("flux")
    files = _files(spec)
    for env in ENVIRONMENTS:
        assert files[f"gitops/{env}/kustomization.yaml"][0]["resources"] == ["source.yaml", "root.yaml"]
        root = files[f"gitops/{env}/root.yaml"][0]
        assert root["kind"] == "Kustomization" and root["metadata"]["name"] == f"ml-platform-{env}"
        assert root["spec"]["path"] == f"./gitops/{env}/components"
        assert root["spec"]["prune"] is True
        assert root["spec"]["sourceRef"] == {"kind": "GitRepository", "name": f"ml-platform-{env}"}
        listed = files[f"gitops/{env}/components/kustomization.yaml"][0]["resources"]
        components = _component_objects(files, env, "Kustomization")
        assert sorted(listed) == sorted(f"{name}.yaml" for name in components) and len(listed) == _installed(spec, env)
        for name in components:
            assert files[f"gitops/{env}/components/{name}.yaml"][0] is components[name]
    # A component left out of the spec leaves the folder the root prunes.
    spec = _spec("flux")
    spec["components"]["model-registry"] = {"enabled": False}
    files = _files(spec)
    assert "model-registry.yaml" not in files["gitops/local/components/kustomization.yaml"][0]["resources"]
    assert "gitops/local/components/model-registry.yaml" not in files


def test_flux_depends_on_follows_the_graph_and_uses_the_remote_cluster():
    spec = _spec("flux", sopsSecret="sops-age", revision="release")
    files = _files(spec)
    plan = _plan(spec)
    for env in ("local", "prod"):
        kustomizations = _component_objects(files, env, "Kustomization")
        assert len(kustomizations) == 27
        settings = {p.name: p.config.settings for p in plan.environment(env).components}
        for name, doc in kustomizations.items():
            depends = {d["name"].removeprefix(f"{env}-") for d in doc["spec"].get("dependsOn", [])}
            # dependsOn, and what the environment's settings add (KServe's Serverless mode needs Knative)
            assert depends == set(CATALOG.components[name].needs(settings[name]))
            assert doc["spec"]["prune"] and doc["spec"]["wait"]
            assert doc["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
            assert ("kubeConfig" in doc["spec"]) == (env == "prod")
        assert files[f"gitops/{env}/source.yaml"][0]["spec"]["ref"] == {"branch": f"deploy/{env}"}


def _closure(name: str, enabled: set[str]) -> set[str]:
    found, pending = set(), [name]
    while pending:
        current = pending.pop()
        if current in enabled and current not in found:
            found.add(current)
            pending.extend(CATALOG.components[current].depends_on)
    return found


def test_flux_health_checks_cert_manager_objects_where_they_can_be(built):
    """Every component that builds cert-manager objects gets the expressions, and only those whose
    dependencies include cert-manager (where `kfgen check` allows such objects) may have any."""
    spec = spec_for_release("26.03")
    spec["gitops"]["engine"] = "flux"
    kustomizations = _component_objects(_files(spec), "local", "Kustomization")
    enabled = set(kustomizations)
    with_checks = {name for name, doc in kustomizations.items() if "healthCheckExprs" in doc["spec"]}
    assert with_checks == {name for name in enabled if "cert-manager" in _closure(name, enabled)}
    creating = {c.name for c in built("26.03", "local").components for o in c.objects if o["apiVersion"].startswith("cert-manager.io/")}
    assert {"cert-manager", "kubeflow-istio-resources", "pipelines"} <= creating <= with_checks
    kinds = {check["kind"] for check in kustomizations["pipelines"]["spec"]["healthCheckExprs"]}
    assert kinds == {"ClusterIssuer", "Issuer", "Certificate"}


def test_flux_objects_are_valid_against_the_controllers_crds():
    plan = _plan(_spec("flux"))
    crds = controller_crds("flux", SourceCache(source_cache_dirs()))
    for env_plan in plan.environments:
        objects = gitops_objects(plan, env_plan)
        assert sum(o["kind"] == "Kustomization" for o in objects) == 1 + len(env_plan.components)
        report = check_environment(EnvironmentBuild(env_plan.name, (), 0.0), plan, crds, objects)
        assert report.findings == (), "\n".join(f.format() for f in report.findings)
    # The schema the check used does know the field: an unknown field beside it is a finding.
    objects = gitops_objects(plan, plan.environment("local"))
    pipelines = next(o for o in objects if o["metadata"]["name"] == "local-pipelines")
    pipelines["spec"]["healthCheckExprs"][0]["currentt"] = "true"
    report = check_environment(EnvironmentBuild("local", (), 0.0), plan, crds, objects)
    assert [f.field for f in report.findings] == ["spec.healthCheckExprs[0].currentt"]


def _flux_status(check: dict[str, str], obj: dict[str, Any]) -> str:
    """Flux's order for one object: failed, then current, else still in progress; an expression
    that cannot be evaluated leaves it unknown (Flux keeps waiting)."""
    environment = celpy.Environment()
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    for field, status in (("failed", "Failed"), ("current", "Current")):
        try:
            result = environment.program(environment.compile(check[field])).evaluate(activation)
        except celpy.CELEvalError:
            return "Unknown"
        if isinstance(result, celpy.CELEvalError):
            return "Unknown"
        if result:
            return status
    return "InProgress"


def _cert_manager(kind: str, *conditions: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "cert-manager.io/v1", "kind": kind, "metadata": {"name": "x", "generation": generation}, "spec": {}}
    if conditions:
        obj["status"] = {"conditions": list(conditions)}
    return obj


def _condition(kind: str, status: str, reason: str, generation: int = 1) -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": reason, "observedGeneration": generation}


@pytest.mark.parametrize(("kind", "conditions", "generation", "status"), [
    ("ClusterIssuer", [_condition("Ready", "True", "IsReady")], 1, "Current"),
    ("Issuer", [_condition("Ready", "True", "KeyPairVerified")], 1, "Current"),
    # A CA issuer whose certificate is still being issued: it will pass.
    ("Issuer", [_condition("Ready", "False", "ErrGetKeyPair")], 1, "InProgress"),
    ("ClusterIssuer", [_condition("Ready", "False", "ErrRegisterACMEAccount")], 1, "InProgress"),
    ("ClusterIssuer", [_condition("Ready", "False", "InvalidConfig")], 1, "Failed"),
    ("ClusterIssuer", [_condition("Ready", "True", "IsReady")], 2, "InProgress"),  # Ready for an older spec
    ("Certificate", [_condition("Ready", "True", "Ready")], 1, "Current"),
    ("Certificate", [_condition("Ready", "False", "DoesNotExist"), _condition("Issuing", "True", "DoesNotExist")], 1, "InProgress"),
    ("Certificate", [_condition("Ready", "False", "DoesNotExist"), _condition("Issuing", "False", "Failed")], 1, "Failed"),
    ("Certificate", [_condition("Ready", "False", "DoesNotExist"), _condition("Issuing", "False", "Denied")], 1, "Failed"),
    ("Certificate", [], 1, "not current"),  # cert-manager has not seen it yet: no status at all
])
def test_cert_manager_readiness_expressions(kind, conditions, generation, status):
    spec = _spec("flux")
    checks = _component_objects(_files(spec), "local", "Kustomization")["pipelines"]["spec"]["healthCheckExprs"]
    check = next(c for c in checks if c["kind"] == kind)
    result = _flux_status(check, _cert_manager(kind, *conditions, generation=generation))
    if status == "not current":
        assert result in ("Unknown", "InProgress")
    else:
        assert result == status


def test_engine_none_renders_no_gitops_files():
    assert _files(_spec("none")) == {}


def test_hydrated_mode_syncs_rendered_yaml():
    files = _files(_spec("flux", hydrated=True, path="platform"))
    doc = files["gitops/local/components/pipelines.yaml"][0]
    assert doc["spec"]["path"] == "./platform/rendered/local/pipelines"
    assert files["gitops/local/root.yaml"][0]["spec"]["path"] == "./platform/gitops/local/components"


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
    ({"engine": "argocd", "repoURL": "https://git.example.com/p.git", "syncFrom": "revision"}, "use syncFrom 'deployBranch' and `kfgen publish`"),
    ({"engine": "flux", "repoURL": "https://git.example.com/p.git", "deployBranch": "deploy"}, "has no {env}"),
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


# --- remote mode through a mirror of kubeflow/manifests ---


def _mirror_spec() -> dict[str, Any]:
    spec = copy.deepcopy(shipped_spec())
    spec["sources"] = {"mode": "remote", "manifestsURL": MIRROR}
    return spec


def test_bases_reference_the_mirror_of_kubeflow_manifests(make_project):
    project = make_project(_mirror_spec())
    assert project.kfgen("render").returncode == 0
    release = shipped_spec()["kubeflow"]["version"]
    bases = sorted((project.root / "base").glob("*/kustomization.yaml"))
    assert len(bases) > 20
    for base in bases:
        document = yaml.safe_load(base.read_text())
        # base/<component>, or base/<component>.<variant> for a cloud variant some environment uses.
        name, _, variant_name = base.parent.name.partition(".")
        component = CATALOG.components[name]
        source = component.releases[release]
        if variant_name:
            source = source.with_variant(next(v for v in source.variants if v.name == variant_name))
        references = (document.get("resources") or []) + (document.get("components") or [])
        assert references == [f"{MIRROR}//{root.path}?ref={root.ref}" for root in source.roots]
        # Read back, each names the upstream root it mirrors, which the source caches hold.
        assert [parse_remote(r, {"github.com/kubeflow/manifests": MIRROR}) for r in references] == source.roots
    pipelines = yaml.safe_load((project.root / "base/pipelines/kustomization.yaml").read_text())
    assert pipelines["resources"] == [f"{MIRROR}//applications/pipeline/overlays?ref=26.03"]
    # Without the mirror's name the same text is no reference kfgen knows.
    with pytest.raises(Exception, match="unsupported remote reference"):
        parse_remote(pipelines["resources"][0])


def test_a_build_reads_mirrored_bases_from_the_source_cache(make_project):
    project = make_project(_mirror_spec())
    assert project.kfgen("render").returncode == 0
    platform = project.plan().platform
    with build_tree(project.root, "remote", SourceCache(source_cache_dirs()), platform.mirrors) as tree:
        base = yaml.safe_load((tree / "base/kubeflow-namespace/kustomization.yaml").read_text())
        assert base["resources"] == ["../../vendor/github.com/kubeflow/manifests/26.03/common/kubeflow-namespace/base"]
        assert (tree / "vendor/github.com/kubeflow/manifests/26.03/common/kubeflow-namespace/base/kustomization.yaml").is_file()


def test_kustomize_fetches_a_mirrored_base_from_the_mirror(make_project, tmp_path):
    """A real fetch: the mirror is a bare repository made from the source cache, reached by git
    through a URL rewrite, as a company's internal mirror would be reached over the network."""
    project = make_project(_mirror_spec())
    assert project.kfgen("render").returncode == 0
    cached = source_cache_dirs()[0] / "github.com/kubeflow/manifests/26.03"
    work = tmp_path / "mirror-work"
    shutil.copytree(cached / "common/kubeflow-namespace", work / "common/kubeflow-namespace")
    git = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    for command in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "mirror"], ["tag", "26.03"]):
        subprocess.run(["git", *command], cwd=work, env=git, check=True)
    bare = tmp_path / "kubeflow-manifests.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    redirect = {**git, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{bare}.insteadOf", "GIT_CONFIG_VALUE_0": MIRROR}
    kustomize = find_kustomize(PROJECT)
    fetched = subprocess.run([kustomize, "build", str(project.root / "base/kubeflow-namespace")], env=redirect,
                             capture_output=True, text=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    direct = subprocess.run([kustomize, "build", str(cached / "common/kubeflow-namespace/base")], capture_output=True, text=True, timeout=120)
    assert load_all_plain(fetched.stdout) == load_all_plain(direct.stdout) and "kind: Namespace" in fetched.stdout


def test_remote_dir_url_via_a_mirror():
    root = RemoteDir("github.com", "kubeflow", "manifests", "26.03", "common/kubeflow-namespace/base")
    assert root.url_via({}) == root.url
    assert root.url_via({"github.com/kubeflow/manifests": MIRROR}) == f"{MIRROR}//common/kubeflow-namespace/base?ref=26.03"
    other = RemoteDir("github.com", "kubernetes-sigs", "lws", "v0.7.0", "config/default")
    assert other.url_via({"github.com/kubeflow/manifests": MIRROR}) == other.url
