"""Internal certificate authorities: staging's trustedCAs reach every workload the catalog says calls out,
in the way its runtime reads extra roots, and nothing else changes; a catalog entry naming a workload or
container upstream does not have fails here instead of adding an empty container."""

from __future__ import annotations

from typing import Any

from helpers import PROJECT, shipped_spec
from kfgen.catalog import load_catalog
from kfgen.trust import CONFIGMAP, KEY, MOUNT, RUNTIME_ENV

CATALOG = load_catalog(PROJECT / "components")
TRUSTING = [(c.name, w) for c in CATALOG.components.values() for w in c.trust]


def _workload(build: Any, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return next(o for o in build.objects if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) == (kind, namespace, name))


def test_staging_workloads_trust_the_company_ca(built):
    pem = next(e for e in shipped_spec()["environments"] if e["name"] == "staging")["trustedCAs"]
    staging = built("26.03", "staging")
    assert {name for name, _ in TRUSTING} == {"dex", "oauth2-proxy", "pipelines"}
    for _, workload in TRUSTING:
        obj = _workload(staging, workload.kind, workload.namespace, workload.name)
        pod = obj["spec"]["template"]["spec"]
        assert {"name": CONFIGMAP, "configMap": {"name": CONFIGMAP}} in pod["volumes"], workload.name
        [container] = [c for c in pod["containers"] if c["name"] == workload.container]
        assert container["image"], workload.name  # upstream's container, not one the patch made up
        assert {"name": CONFIGMAP, "mountPath": MOUNT, "readOnly": True} in container["volumeMounts"]
        assert RUNTIME_ENV[workload.runtime] in container["env"]
        configmap = _workload(staging, "ConfigMap", workload.namespace, CONFIGMAP)
        assert configmap["data"] == {KEY: pem}


def test_environments_without_trusted_cas_are_unchanged(built):
    for env in ("local", "prod"):
        build = built("26.03", env)
        assert not [o for o in build.objects if o["metadata"]["name"] == CONFIGMAP]
        for _, workload in TRUSTING:
            pod = _workload(build, workload.kind, workload.namespace, workload.name)["spec"]["template"]["spec"]
            assert CONFIGMAP not in {v["name"] for v in pod.get("volumes") or ()}


def test_catalog_trust_entries_name_upstream_containers_in_every_release(built):
    for release in ("26.03", "v1.11.0"):
        build = built(release, "local", True)
        for _, workload in TRUSTING:
            pod = _workload(build, workload.kind, workload.namespace, workload.name)["spec"]["template"]["spec"]
            assert workload.container in {c["name"] for c in pod["containers"]}, (release, workload.name)
