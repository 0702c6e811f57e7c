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
    for env in ENVIRONMENTS:
        objects = [o for c in built(release, env).components for o in c.objects]
        for obj in objects:
            if obj["kind"] not in ("Deployment", "StatefulSet") or (obj["spec"].get("replicas") or 1) < 2:
                continue
            name = obj["metadata"]["name"]
            scaled += 1
            assert scaling.get(name) in ("any", "leaderElection"), (env, name, "scaled but not listed as safe to scale")
            if scaling[name] == "leaderElection":
                assert name == "katib-controller" and _katib_leader_election(objects), (env, name)
    assert scaled >= 20


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
