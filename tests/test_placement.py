"""Scheduling: the environment's placement reaches every Deployment and StatefulSet of every component,
a component's own placement replaces it field by field, DaemonSets keep upstream's, and upstream's node
selectors are merged into, not lost."""

from __future__ import annotations

import copy
from typing import Any

from helpers import TempProject, shipped_spec

RELEASE = "26.03"
SCHEDULED = {"Deployment", "StatefulSet"}


def _workloads(build: Any, kinds: set[str]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, o) for c in build.components for o in c.objects if o["kind"] in kinds]


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def test_prod_runs_every_platform_workload_on_the_system_pool_spread_across_zones(built):
    spec = next(e for e in shipped_spec()["environments"] if e["name"] == "prod")["scheduling"]
    workloads = _workloads(built(RELEASE, "prod"), SCHEDULED)
    assert len(workloads) > 40
    for component, obj in workloads:
        pod = _pod(obj)
        where = f"{component}: {obj['kind']} {obj['metadata']['name']}"
        assert pod["nodeSelector"]["cloud.google.com/gke-nodepool"] == "system", where
        assert pod["tolerations"] == spec["tolerations"], where
        [spread] = [c for c in pod["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
        # Counted over the pods of the workload's own revision, whichever kind it is.
        assert spread["labelSelector"] == {} and set(spread["matchLabelKeys"]) == {"pod-template-hash", "controller-revision-hash"}, where
        assert (spread["maxSkew"], spread["whenUnsatisfiable"]) == (1, "ScheduleAnyway"), where


def test_environments_without_scheduling_keep_upstream_placement(built):
    for component, obj in _workloads(built(RELEASE, "local"), SCHEDULED | {"DaemonSet"}):
        pod = _pod(obj)
        assert "cloud.google.com/gke-nodepool" not in (pod.get("nodeSelector") or {}), component
        assert not any(c.get("matchLabelKeys") for c in pod.get("topologySpreadConstraints") or ()), component


def test_daemonsets_keep_upstream_placement(built):
    local = {o["metadata"]["name"]: _pod(o) for _, o in _workloads(built(RELEASE, "local"), {"DaemonSet"})}
    prod = {o["metadata"]["name"]: _pod(o) for _, o in _workloads(built(RELEASE, "prod"), {"DaemonSet"})}
    assert prod, "prod has DaemonSets (Istio's CNI agent)"
    for name, pod in prod.items():
        for field in ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "priorityClassName"):
            assert pod.get(field) == local[name].get(field), (name, field)


def test_component_scheduling_replaces_the_environment_field_by_field_and_merges_upstream_selectors(make_project, built):
    spec = copy.deepcopy(shipped_spec())
    local = next(e for e in spec["environments"] if e["name"] == "local")
    local["scheduling"] = {"nodeSelector": {"pool": "platform"}, "tolerations": [{"key": "platform", "operator": "Exists"}],
                           "priorityClassName": "platform-critical"}
    local["components"] = {"katib": {"scheduling": {
        "nodeSelector": {"pool": "tuning"},
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}}}}}
    project: TempProject = make_project(spec)
    project.vendor()
    project.render()
    build = project.build("local")
    upstream = {(c, o["kind"], o["metadata"]["name"]): _pod(o)["nodeSelector"]
                for c, o in _workloads(built(RELEASE, "local"), SCHEDULED) if _pod(o).get("nodeSelector")}
    assert upstream, "some upstream workloads have node selectors of their own"
    for component, obj in _workloads(build, SCHEDULED):
        pod = _pod(obj)
        where = f"{component}: {obj['metadata']['name']}"
        assert pod["tolerations"] == [{"key": "platform", "operator": "Exists"}], where
        assert pod["priorityClassName"] == "platform-critical", where
        if component == "katib":
            assert pod["nodeSelector"]["pool"] == "tuning", where
            assert pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
                "matchExpressions"][0]["values"] == ["amd64"], where
        else:
            assert pod["nodeSelector"]["pool"] == "platform", where
        # Upstream's own selectors stay beside the spec's.
        own = upstream.get((component, obj["kind"], obj["metadata"]["name"]), {})
        assert pod["nodeSelector"].items() >= own.items(), where
    report = project.kfgen("check", "--env", "local")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-2000:]
