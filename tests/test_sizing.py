"""Safe replicas: a workload runs more than one replica only where the catalog says it may."""

from __future__ import annotations

import pytest

from helpers import PROJECT
from kfgen.catalog import load_catalog

RELEASES = ["26.03", "v1.11.0"]
ENVIRONMENTS = ["local", "staging", "prod"]


def _katib_leader_election(objects) -> bool:
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "katib-config")
    return "\n    enableLeaderElection: true\n" in config["data"]["katib-config.yaml"]


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_every_scaled_workload_is_safe_to_scale_or_elects_a_leader(built, release):
    catalog = load_catalog(PROJECT / "components")
    scaling = {w.name: w.scaling for c in catalog.components.values() if release in c.releases
               for w in c.releases[release].workloads}
    scaled = 0
    for env in ENVIRONMENTS:  # every component enabled
        objects = [o for c in built(release, env, True).components for o in c.objects]
        for obj in objects:
            if obj["kind"] not in ("Deployment", "StatefulSet") or (obj["spec"].get("replicas") or 1) < 2:
                continue
            name = obj["metadata"]["name"]
            scaled += 1
            assert scaling.get(name) in ("any", "leaderElection"), (env, name, "scaled but not listed as safe to scale")
            if scaling[name] == "leaderElection":
                assert name == "katib-controller" and _katib_leader_election(objects), (env, name)
    assert scaled >= 20


def _selects(budget, workload) -> bool:
    labels = workload["spec"]["template"]["metadata"].get("labels") or {}
    return budget["metadata"].get("namespace") == workload["metadata"].get("namespace") and \
        (budget["spec"]["selector"].get("matchLabels") or {}).items() <= labels.items()


@pytest.mark.slow
@pytest.mark.parametrize("release", RELEASES)
def test_each_pod_has_at_most_one_disruption_budget_and_replicated_ones_keep_one_available(built, release):
    # The eviction API refuses a pod that two budgets select, so a second budget would block every drain.
    for env in ENVIRONMENTS:  # every component enabled; staging and prod are highly available
        objects = [o for c in built(release, env, True).components for o in c.objects]
        budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
        assert len({(b["metadata"]["namespace"], b["metadata"]["name"]) for b in budgets}) == len(budgets), env
        for workload in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
            name = workload["metadata"]["name"]
            selecting = [b for b in budgets if _selects(b, workload)]
            assert len(selecting) <= 1, (env, name, [b["metadata"]["name"] for b in selecting])
            if env != "local" and (workload["spec"].get("replicas") or 1) >= 2 and workload["kind"] == "Deployment":
                assert selecting and selecting[0]["spec"].get("minAvailable") == 1, (env, name)


@pytest.mark.parametrize("release", RELEASES)
def test_single_replica_workloads_stay_at_one_and_katib_elects_a_leader_where_scaled(built, release):
    prod = [o for c in built(release, "prod").components for o in c.objects]
    local = [o for c in built(release, "local").components for o in c.objects]
    deployments = {o["metadata"]["name"]: o for o in prod if o["kind"] == "Deployment"}
    assert (deployments["ml-pipeline-scheduledworkflow"]["spec"].get("replicas") or 1) == 1
    assert (deployments["notebook-controller-deployment"]["spec"].get("replicas") or 1) == 1
    assert deployments["katib-controller"]["spec"]["replicas"] == 3 and _katib_leader_election(prod)
    lease = [o for o in prod if o["kind"] == "Role" and o["metadata"]["name"] == "katib-controller-leader-election"]
    assert lease and lease[0]["rules"][0]["resources"] == ["leases"]
    # No PodDisruptionBudget for a workload that runs one replica: it would block every drain.
    budgets = {o["metadata"]["name"] for o in prod if o["kind"] == "PodDisruptionBudget"}
    assert "ml-pipeline-scheduledworkflow" not in budgets and "katib-controller" in budgets
    # local runs one replica of everything: upstream's katib-config stays as it is.
    assert not _katib_leader_election(local)
