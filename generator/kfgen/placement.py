"""Where and how a component's pods run: its resolved scheduling, and the registry login they pull with, as
strategic-merge patches of its workloads.

Deployments and StatefulSets take the environment's scheduling, overridden field by field by the
component's own. DaemonSets are left alone: they run on every node by design (Istio's CNI agent must, or
meshed pods elsewhere never start).

A strategic merge keeps Kubernetes' own semantics: nodeSelector and affinity merge into upstream's,
tolerations replace upstream's list, topology spread constraints merge by topology key. A spread
constraint counts the pods of the workload's own revision (matchLabelKeys), so it needs no selector
per workload.
"""

from __future__ import annotations

from typing import Any

from .spec import Scheduling
from .yamlio import Manifest

# The labels Deployments and StatefulSets put on the pods of one revision of a workload. A pod has one
# of them; a key the pod does not have is ignored, so one constraint serves both kinds.
REVISION_LABELS = ["controller-revision-hash", "pod-template-hash"]
WORKLOADS = "^(Deployment|StatefulSet)$"


def pull_secret_patches(secret: str) -> list[tuple[str, Manifest, dict[str, str]]]:
    """(file, patch, target): the component's ServiceAccounts and its Deployments, StatefulSets and DaemonSets
    pull with the registry login named secret; pods of the namespace's default account too."""
    pulls = [{"name": secret}]
    return [
        ("pull-secret-serviceaccounts.yaml",
         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "pulling"}, "imagePullSecrets": pulls},
         {"version": "v1", "kind": "ServiceAccount"}),
        ("pull-secret-workloads.yaml",
         {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pulling"},
          "spec": {"template": {"spec": {"imagePullSecrets": pulls}}}},
         {"group": "apps", "kind": "^(Deployment|StatefulSet|DaemonSet)$"}),
    ]


def _pod_spec(scheduling: Scheduling) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if scheduling.node_selector:
        spec["nodeSelector"] = dict(sorted(scheduling.node_selector.items()))
    if scheduling.tolerations is not None:
        spec["tolerations"] = [dict(t) for t in scheduling.tolerations]
    if scheduling.affinity:
        spec["affinity"] = scheduling.affinity
    spread = scheduling.topology_spread
    if spread is not None:
        spec["topologySpreadConstraints"] = [{
            "topologyKey": spread.topology_key, "maxSkew": spread.max_skew, "whenUnsatisfiable": spread.when_unsatisfiable,
            "labelSelector": {}, "matchLabelKeys": REVISION_LABELS,
        }]
    if scheduling.priority_class_name:
        spec["priorityClassName"] = scheduling.priority_class_name
    return spec


def scheduling_patch(scheduling: Scheduling) -> tuple[Manifest, dict[str, str]] | None:
    """The patch of the component's Deployments and StatefulSets and its target; None when scheduling keeps
    upstream's placement. (kustomize gives a targeted patch each target's kind and name.)"""
    if scheduling.empty:
        return None
    return ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scheduled"},
             "spec": {"template": {"spec": _pod_spec(scheduling)}}},
            {"group": "apps", "kind": WORKLOADS})
