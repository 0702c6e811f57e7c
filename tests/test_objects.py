"""Object checks on real builds: schemas of built-in kinds and CRDs, identities, namespaces, CRD order."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from helpers import PROJECT, TempProject, provided_crds_of, shipped_spec, source_cache_dirs, spec_for_release
from kfgen.build import EnvironmentBuild
from kfgen.catalog import load_catalog
from kfgen.errors import InputError
from kfgen.objects import CrdIndex, Finding, Validator, Violation, check_environment, check_objects, kubernetes_schemas
from kfgen.objects.controllers import controller_crds, gitops_objects
from kfgen.plan import Plan, make_plan
from kfgen.resolve import resolve
from kfgen.sources import SourceCache
from kfgen.yamlio import parse

RELEASES = ("26.03", "v1.11.0")
ENVIRONMENTS = ("local", "staging", "prod")
CATALOG = load_catalog(PROJECT / "components")
KUBERNETES = "1.33"


def _plan(spec: dict[str, Any]) -> Plan:
    return make_plan(resolve(parse(yaml.safe_dump(spec), "platform.yaml"), CATALOG), CATALOG)


def _controller_crds(engine: str) -> list[dict[str, Any]]:
    return controller_crds(engine, SourceCache(source_cache_dirs()))


def _with(build: EnvironmentBuild, component: str, *extra: dict[str, Any],
          edit: tuple[str, str, Any] | None = None) -> EnvironmentBuild:
    """A copy of build whose component gets extra objects, or one object (kind, name) replaced by edit(obj)."""
    components = []
    for c in build.components:
        objects = c.objects
        if c.name == component:
            objects = list(objects) + [copy.deepcopy(o) for o in extra]
            if edit:
                kind, name, change = edit
                objects = [change(copy.deepcopy(o)) if (o["kind"], o["metadata"]["name"]) == (kind, name) else o for o in objects]
        components.append(dataclasses.replace(c, _objects=objects))
    return EnvironmentBuild(build.environment, tuple(components), build.seconds)


def _object(build: EnvironmentBuild, kind: str, name: str) -> tuple[str, dict[str, Any]]:
    return next((c.name, o) for c in build.components for o in c.objects if (o["kind"], o["metadata"]["name"]) == (kind, name))


@pytest.fixture(scope="module")
def local(built) -> EnvironmentBuild:
    return built("26.03", "local")


@pytest.fixture(scope="module")
def plan() -> Plan:
    return _plan(spec_for_release("26.03"))


# --- every shipped environment passes ---


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_has_no_findings(built, release, env):
    spec = spec_for_release(release)
    plan = _plan(spec)
    build = built(release, env)
    report = check_environment(build, plan, _controller_crds(spec["gitops"]["engine"]), gitops_objects(plan, plan.environment(env)),
                               provided_crds=provided_crds_of(plan, env))
    assert report.findings == (), "\n".join(f.format() for f in report.findings)
    assert report.objects == len(build.objects) + len(gitops_objects(plan, plan.environment(env))) > 600


@pytest.mark.parametrize("engine", ["argocd", "flux"])
def test_gitops_objects_of_both_engines_validate_against_the_controller_crds(engine):
    spec = copy.deepcopy(shipped_spec())
    spec["gitops"] = {"engine": engine, "repoURL": "https://git.example.com/platform.git", "revision": "main"}
    plan = _plan(spec)
    crds = _controller_crds(engine)
    assert crds
    for env_plan in plan.environments:
        objects = gitops_objects(plan, env_plan)
        assert len(objects) > 20
        report = check_environment(EnvironmentBuild(env_plan.name, (), 0.0), plan, crds, objects)
        assert report.findings == (), "\n".join(f.format() for f in report.findings)
    # Without the controller's CRDs nothing vouches for its objects: an error, never a skip.
    report = check_environment(EnvironmentBuild("local", (), 0.0), plan, [], gitops_objects(plan, plan.environment("local")))
    assert report.findings and {f.check for f in report.findings} == {"schema"}
    assert all("no schema for" in f.message for f in report.findings if f.kind not in ("ConfigMap",))


# --- each kind of finding, from a crafted bad object ---


def _findings(build: EnvironmentBuild, plan: Plan, **kwargs) -> list[Finding]:
    return list(check_environment(build, plan, **kwargs).findings)


def test_known_verdicts_are_used_for_unchanged_objects_only(local, plan, tmp_path):
    """A verdict from an earlier check stands for an object only while the object and its schemas are unchanged."""
    first = check_environment(local, plan)
    assert len(first.verdicts) > 500 and first.findings == ()
    again = check_environment(local, plan, known=first.verdicts)
    assert (again.findings, again.verdicts) == (first.findings, first.verdicts)
    # A planted verdict shows the known ones are consulted: every object of the build takes it.
    planted = {digest: (Violation("spec", "planted"),) for digest in first.verdicts}
    assert {f.message for f in check_environment(local, plan, known=planted).findings} == {"planted"}
    # An object edited after the build has no digest of its own: it is validated, and nothing else changes.
    component, _ = _object(local, "Deployment", "ml-pipeline")

    def edit(obj):
        obj["spec"]["replicas"] = "two"
        return obj

    edited = _with(local, component, edit=("Deployment", "ml-pipeline", edit))
    findings = check_environment(edited, plan, known=planted).findings
    assert [(f.name, f.field) for f in findings if f.component == component] == [("ml-pipeline", "spec.replicas")]
    # A changed CRD changes the digest of every object: none of the planted verdicts applies.
    crd_component = next(c for c in local.components if any(o["kind"] == "CustomResourceDefinition" for o in c.objects))
    described = crd_component.json_lines.replace('"openAPIV3Schema":{', '"openAPIV3Schema":{"description":"x",', 1)
    assert described != crd_component.json_lines
    changed = dataclasses.replace(crd_component, _objects=None, json_lines=described)
    rebuilt = EnvironmentBuild(local.environment, tuple(changed if c is crd_component else c for c in local.components), local.seconds)
    assert check_environment(rebuilt, plan, known=planted).findings == ()


def test_unknown_field_in_a_deployment(local, plan):
    component, _ = _object(local, "Deployment", "ml-pipeline")

    def edit(obj):
        obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
        return obj

    findings = _findings(_with(local, component, edit=("Deployment", "ml-pipeline", edit)), plan)
    assert findings == [Finding("local", "pipelines", "Deployment", "kubeflow", "ml-pipeline",
                                "spec.template.spec.containers[0].imagePullPolicyy",
                                "unknown field (did you mean 'imagePullPolicy'?)", "schema")]


def test_wrong_type_and_missing_required_field(local, plan):
    def edit(obj):
        obj["spec"]["replicas"] = "two"
        del obj["spec"]["selector"]
        obj["metadata"]["labels"]["tier"] = 3
        return obj

    findings = _findings(_with(local, "pipelines", edit=("Deployment", "ml-pipeline", edit)), plan)
    assert [(f.field, f.message) for f in findings] == [
        ('metadata.labels.tier', 'expected string, found integer 3'),
        ("spec.replicas", 'expected integer, found string "two"'),
        ("spec.selector", "required field is missing"),
    ]


def test_custom_resource_fields_are_checked_against_its_crd(local, plan):
    def edit(obj):
        obj["spec"]["hostz"] = ["example.com"]
        obj["spec"]["http"][0]["route"][0]["destination"]["port"]["number"] = "5556"
        obj["metadata"]["labelz"] = {}
        return obj

    findings = _findings(_with(local, "dex", edit=("VirtualService", "dex", edit)), plan)
    assert [(f.component, f.kind, f.namespace, f.name, f.field, f.message) for f in findings] == [
        ("dex", "VirtualService", "auth", "dex", "metadata.labelz", "unknown field (did you mean 'labels'?)"),
        ("dex", "VirtualService", "auth", "dex", "spec.hostz", "unknown field (did you mean 'hosts'?)"),
        ("dex", "VirtualService", "auth", "dex", "spec.http[0].route[0].destination.port.number", 'expected integer, found string "5556"'),
    ]


def test_unknown_kind_and_unserved_version_are_errors_not_skips(local, plan):
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "kubeflow"}}
    _, service = _object(local, "Service", "ml-pipeline")
    old = copy.deepcopy(service) | {"apiVersion": "v2"}
    old["metadata"]["name"] = "ml-pipeline-old"
    _, vs = _object(local, "VirtualService", "dex")
    beta = copy.deepcopy(vs) | {"apiVersion": "networking.istio.io/v1beta9"}
    beta["metadata"]["name"] = "dex-beta"
    findings = _findings(_with(local, "pipelines", unknown, old, beta), plan)
    assert [(f.kind, f.name, f.field, f.check) for f in findings] == [
        ("Service", "ml-pipeline-old", "apiVersion", "schema"),
        ("VirtualService", "dex-beta", "apiVersion", "schema"),
        ("Widget", "w", "kind", "schema"),
    ]
    assert "no CRD of the environment defines it" in findings[2].message
    assert "does not serve version 'v1beta9'" in findings[1].message


def test_duplicate_identity(local, plan):
    _, config = _object(local, "ConfigMap", "pipeline-install-config")
    # Reported on every copy after the first, in dependency order.
    findings = _findings(_with(local, "volumes-web-app", config), plan)
    assert [(f.component, f.kind, f.namespace, f.name, f.field, f.check) for f in findings] == [
        ("volumes-web-app", "ConfigMap", "kubeflow", "pipeline-install-config", "metadata.name", "duplicate")]
    assert "also built by component pipelines" in findings[0].message


def test_namespace_the_environment_does_not_create(local, plan):
    missing = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "nowhere"}}
    system = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "kube-system"}}
    cluster = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x", "namespace": "nowhere"}}
    findings = _findings(_with(local, "pipelines", missing, system, cluster), plan)
    assert [(f.kind, f.namespace, f.name, f.field, f.check) for f in findings] == [
        ("ConfigMap", "nowhere", "settings", "metadata.namespace", "namespace")]
    assert "neither created by environment local" in findings[0].message


def test_custom_resource_whose_crd_comes_from_a_component_not_depended_on(local, plan):
    _, vs = _object(local, "VirtualService", "dex")
    other = copy.deepcopy(vs)
    other["metadata"] = {"name": "cert-manager-ui", "namespace": "cert-manager"}
    findings = _findings(_with(local, "cert-manager", other), plan)
    assert [(f.component, f.kind, f.name, f.field, f.check) for f in findings] == [
        ("cert-manager", "VirtualService", "cert-manager-ui", "kind", "crd-order")]
    assert "virtualservices.networking.istio.io comes from component istio-crds" in findings[0].message
    # dex depends on istio, which depends on istio-crds: transitively fine, as the shipped build shows.


def test_gitops_objects_are_checked_with_the_controller_crds(local, plan):
    objects = gitops_objects(plan, plan.environment("local"))
    application = next(o for o in objects if o["kind"] == "Application" and o["metadata"]["name"].endswith("dex"))
    application["spec"]["syncPolicy"]["automated"]["prunee"] = True
    application["metadata"]["namespace"] = "argo"
    findings = _findings(EnvironmentBuild("local", (), 0.0), plan, controller_crds=_controller_crds("argocd"), gitops_objects=objects)
    assert [(f.component, f.kind, f.namespace, f.field, f.check) for f in findings] == [
        ("gitops", "Application", "argo", "metadata.namespace", "namespace"),
        ("gitops", "Application", "argo", "spec.syncPolicy.automated.prunee", "schema"),
    ]


def test_check_objects_sorts_findings_of_several_environments(built, plan):
    bad = {"apiVersion": "v1", "kind": "Widget", "metadata": {"name": "w"}}
    builds = [_with(built("26.03", env), "pipelines", bad) for env in ("staging", "local")]
    findings = check_objects(builds, plan, provided_crds={"staging": provided_crds_of(plan, "staging")})
    assert [(f.environment, f.kind) for f in findings] == [("local", "Widget"), ("staging", "Widget")]


# --- CRD schema semantics ---


def _crd(schema: dict[str, Any], scope: str = "Namespaced") -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": scope, "names": {"kind": "Gadget", "plural": "gadgets"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}},
                                  {"name": "v0", "served": False, "storage": False, "schema": {"openAPIV3Schema": schema}}]}}


GADGET_SCHEMA = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["port"],
            "properties": {
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "note": {"type": "string", "nullable": True},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"level": {"type": "integer"}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
                "either": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                           "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
            },
        },
    },
}


def _gadget_violations(spec: dict[str, Any], **top: Any) -> list[tuple[str, str]]:
    validator = Validator(kubernetes_schemas(KUBERNETES), CrdIndex([("gadgets", _crd(GADGET_SCHEMA))]))
    obj = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec} | top
    return [(v.field, v.message) for v in validator.validate(obj)]


def test_crd_schema_semantics():
    assert _gadget_violations({"port": 80, "size": 3, "mode": "a", "name": "abc", "note": None,
                               "config": {"level": 2, "anything": {"goes": True}}, "labels": {"x": "y"},
                               "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                               "ports": [{"name": "a"}, {"name": "b"}], "either": {"a": "x"}}) == []
    assert _gadget_violations({"port": "http"}) == []
    assert _gadget_violations({}) == [("spec.port", "required field is missing")]
    assert _gadget_violations({"port": True}) == [("spec.port", "expected integer or string, found boolean true")]
    assert _gadget_violations({"port": 1, "size": 11}) == [("spec.size", "must be at most 10; found 11")]
    assert _gadget_violations({"port": 1, "mode": "c"}) == [("spec.mode", 'must be one of "a", "b"; found string "c"')]
    assert _gadget_violations({"port": 1, "name": "ABC"}) == [("spec.name", 'must match the pattern ^[a-z]+$; found string "ABC"')]
    # The API server drops a null it does not allow, so it is absent: fine unless required.
    assert _gadget_violations({"port": 1, "size": None, "labels": {"x": None}}) == []
    assert _gadget_violations({"port": None}) == [("spec.port", "required field is null (the API server drops it)")]
    assert _gadget_violations({"port": 1, "ports": [None]}) == [("spec.ports[0]", "expected object, found null")]
    assert _gadget_violations({"port": 1, "config": {"level": "high"}}) == [("spec.config.level", 'expected integer, found string "high"')]
    assert _gadget_violations({"port": 1, "labels": {"x": 1}}) == [("spec.labels.x", "expected string, found integer 1")]
    assert _gadget_violations({"port": 1, "ports": [{"name": "a"}, {"name": "a"}]}) == [("spec.ports[1]", "duplicate entry for key name")]
    assert _gadget_violations({"port": 1, "either": {"a": "x", "b": "y"}}) == [
        ("spec.either", "must match exactly one of the oneOf alternatives; matches 2")]
    assert _gadget_violations({"port": 1, "extra": 1}) == [("spec.extra", "unknown field")]
    # apiVersion, kind and metadata follow ObjectMeta, whatever the CRD's schema says of them.
    assert _gadget_violations({"port": 1}, metadata={"name": "g", "labels": {"a": 1}}) == [("metadata.labels.a", "expected string, found integer 1")]
    assert _gadget_violations({"port": 1}, metadata={"name": "g", "nme": "x"}) == [("metadata.nme", "unknown field (did you mean 'name'?)")]
    assert _gadget_violations({"port": 1}, status={}) == [("status", "unknown field")]
    assert _gadget_violations({"port": 1}, apiVersion="example.com/v0") == [
        ("apiVersion", "CRD gadgets.example.com does not serve version 'v0' (served: v1)")]


def test_preserve_unknown_fields_at_the_root_allows_anything():
    validator = Validator(kubernetes_schemas(KUBERNETES),
                          CrdIndex([("gadgets", _crd({"type": "object", "x-kubernetes-preserve-unknown-fields": True}))]))
    assert validator.validate({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"a": [1]}}) == []


def test_cluster_scoped_custom_resources_need_no_namespace(local, plan):
    crd = _crd({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}, "Cluster")
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "nowhere"}, "spec": {}}
    assert _findings(_with(local, "pipelines", crd, gadget), plan) == []


def test_unsupported_kubernetes_version_is_bad_input():
    with pytest.raises(InputError, match=r"no Kubernetes schemas for version '1\.9'"):
        kubernetes_schemas("1.9")


# --- agreement with kubernetes-validate on built-in kinds ---


def _peer_valid(obj: dict[str, Any]) -> bool:
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except ValidationError:
        return False
    return True


def _leaves(value: Any, path: tuple[Any, ...] = ()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, path + (index,))
    else:
        yield path, value


def _set(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(obj)
    target = copied
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return copied


_DELETE = object()


def _mutations(obj: dict[str, Any]):
    """Invalid-looking copies: an unknown field, wrong types, nulls, missing fields."""
    body = "spec" if isinstance(obj.get("spec"), dict) else "metadata"
    yield "unknown field", _set(obj, (body, "notAField"), 1)
    yield "unknown top-level field", _set(obj, ("specs",), {})
    # apiVersion and kind choose the schema: kubernetes-validate cannot take other values there.
    leaves = [(path, value) for path, value in _leaves(obj) if path[0] not in ("apiVersion", "kind")]
    for path, value in leaves[:: max(1, len(leaves) // 6)]:
        replacement = {str: 7, int: "7", bool: "yes", float: "1.5"}.get(type(value), 1)
        yield f"wrong type at {path}", _set(obj, path, replacement)
        yield f"object instead of scalar at {path}", _set(obj, path, {"a": 1})
        yield f"null at {path}", _set(obj, path, None)
        if isinstance(value, int) and not isinstance(value, bool):
            yield f"integral float at {path}", _set(obj, path, float(value))
        if len(path) > 1:
            yield f"missing {path[:-1]}", _set(obj, path[:-1], _DELETE)
    for key in list(obj.get(body) or {}):
        yield f"missing {body}.{key}", _set(obj, (body, key), _DELETE)


@pytest.mark.slow  # kubernetes-validate over every object of an environment
def test_verdicts_agree_with_kubernetes_validate(local):
    schemas = kubernetes_schemas(KUBERNETES)
    ours = Validator(schemas, CrdIndex([]))
    builtin = [o for o in local.objects if schemas.is_builtin(o["apiVersion"].rpartition("/")[0], o["kind"])]
    assert len(builtin) > 500
    disagreements = []
    for obj in builtin:
        if (not ours.validate(obj)) != _peer_valid(obj):
            disagreements.append(("original", obj["kind"], obj["metadata"]["name"]))
    verdicts = {True: 0, False: 0}
    one_per_kind = {(o["apiVersion"], o["kind"]): o for o in reversed(builtin)}
    for obj in one_per_kind.values():
        for label, mutated in _mutations(obj):
            mine, peer = not ours.validate(mutated), _peer_valid(mutated)
            verdicts[peer] += 1
            if mine != peer:
                disagreements.append((label, obj["kind"], obj["metadata"]["name"], json.dumps(ours.validate(mutated), default=str)[:300]))
    assert not disagreements
    # The mutations exercise both verdicts, mostly the invalid one.
    assert verdicts[False] > 200 and verdicts[True] > 20, verdicts


def test_kubernetes_validate_skips_custom_resources_that_we_validate(local, plan):
    skipped = 0
    for obj in local.objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except SchemaNotFoundError:
            skipped += 1
        except ValidationError:
            pass
        if skipped:
            break
    assert skipped  # the peer has no schema for custom resources; we check them against their CRDs
    assert check_environment(local, plan).objects == len(local.objects)


# --- the command line ---


@pytest.fixture(scope="module")
def bad_project(tmp_path_factory) -> TempProject:
    project = TempProject(tmp_path_factory.mktemp("check") / "project")
    project.vendor()
    project.render()
    kustomization = project.root / "overlays" / "local" / "dex" / "kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    document.setdefault("patches", []).append({
        "target": {"kind": "Deployment", "name": "dex"},
        "patch": json.dumps([{"op": "add", "path": "/spec/template/spec/containers/0/imagePullPolicyy", "value": "Always"}]),
    })
    kustomization.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return project


def test_cli_check_names_the_bad_object_and_field(bad_project):
    result = bad_project.kfgen("check", "--env", "local")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "drift: overlays/local/dex/kustomization.yaml differs from a fresh render" in lines
    assert ("local/dex: Deployment auth/dex: spec.template.spec.containers[0].imagePullPolicyy: "
            "unknown field (did you mean 'imagePullPolicy'?)") in lines
    summary = next(line for line in lines if line.startswith("objects local:"))
    assert ", 1 finding," in summary and "objects validated" in summary
    assert lines[-1].startswith("check: 1 generated files drifted")


def test_cli_check_json_and_github_output(bad_project):
    result = bad_project.kfgen("--output", "json", "check", "--env", "local")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["drift"] == ["overlays/local/dex/kustomization.yaml"]
    assert [e["environment"] for e in report["environments"]] == ["local"]
    assert report["findings"] == [{"environment": "local", "component": "dex", "kind": "Deployment", "namespace": "auth", "name": "dex",
                                   "field": "spec.template.spec.containers[0].imagePullPolicyy",
                                   "message": "unknown field (did you mean 'imagePullPolicy'?)", "check": "schema"}]
    result = bad_project.kfgen("--output", "github", "check", "--env", "local")
    assert result.returncode == 1
    assert ("::error file=overlays/local/dex/kustomization.yaml,title=kfgen check local/dex::local/dex: Deployment auth/dex: "
            "spec.template.spec.containers[0].imagePullPolicyy: unknown field (did you mean 'imagePullPolicy'?)") in result.stdout.splitlines()


def test_cli_check_bad_input_exits_2(make_project):
    project = make_project()
    assert project.kfgen("render").returncode == 0
    result = project.kfgen("check", "--env", "nowhere")
    assert result.returncode == 2 and "no environment 'nowhere'" in result.stderr
    result = project.kfgen("check")  # vendored sources, but no vendor/
    assert result.returncode == 2 and "kfgen vendor" in result.stderr
    assert project.kfgen("check", "--drift-only").returncode == 0


def test_objects_built_alike_are_validated_once_per_check(built, monkeypatch):
    """Within one check, a verdict found in one environment stands for the same object (under the same
    schemas) in the next: checking an environment built alike validates nothing again."""
    from kfgen.objects.verdicts import SharedVerdicts, checked_environment

    local = built("26.03", "local")
    temp = built.projects[("26.03", False)]
    plan = temp.plan()
    calls = []
    validate = Validator.validate
    monkeypatch.setattr(Validator, "validate", lambda self, obj: calls.append(obj) or validate(self, obj))
    cache = SourceCache(source_cache_dirs())
    shared = SharedVerdicts()
    first = checked_environment(plan, temp.root, plan.environment("local"), local, cache, None, shared)
    validated = len(calls)
    assert validated > 500 and len(shared.verdicts) >= validated - 50
    again = checked_environment(plan, temp.root, plan.environment("local"), local, cache, None, shared)
    assert len(calls) == validated and again.findings == first.findings
