"""Applying: an environment's built objects to a cluster, component by component, in dependency order.

Upstream's advice is to re-run `kubectl apply` until it stops failing, because custom resources race
their CRDs and objects race the webhooks that admit them. Here the order is known: within each
component the CRDs go first and are waited for until Established, then Namespaces, then the rest in
kind order, and webhook configurations last, once the Services they call have endpoints. Everything
goes through server-side apply with field manager `kfgen`.

Each applied object is labelled with its environment and component, and the environment's inventory
(a ConfigMap in kube-system) records what was applied; objects in the previous inventory that the
spec no longer yields are pruned, and a second run with nothing changed changes nothing.

In dry-run mode (`kfgen check --server`, `kfgen apply --dry-run=server`) every object goes through
server-side dry run: defaulting, validation (including CRD validation rules) and admission, nothing
stored. CRDs and Namespaces are applied for real even then, since nothing that uses them could be
checked otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .build import EnvironmentBuild
from .errors import BuildError, InputError
from .objectkey import ObjectKey

FIELD_MANAGER = "kfgen"
LABEL_ENVIRONMENT = "kfgen.dev/environment"
LABEL_COMPONENT = "kfgen.dev/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
INVENTORY_NAMESPACE = "kube-system"
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
# Kinds in the order a component's objects are applied; unknown kinds come after these, webhooks last.
KIND_ORDER = ["CustomResourceDefinition", "Namespace", "ResourceQuota", "LimitRange", "PriorityClass", "StorageClass",
              "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding", "ConfigMap", "Secret",
              "Service", "PersistentVolumeClaim", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]
_WEBHOOK_POSITION = len(KIND_ORDER) + 1
# Requests in flight at once within a stage: the API server does the work, so a few threads overlap it.
APPLY_WORKERS = 8


@dataclass(frozen=True)
class Rejection:
    """An object the API server refused, with its reason."""

    environment: str
    component: str
    ref: ObjectKey
    message: str

    def format(self) -> str:
        return f"{self.environment}/{self.component}: {self.ref.kind_and_name} ({self.ref.api_version}): {self.message}"


@dataclass
class ApplyReport:
    environment: str
    dry_run: bool
    actions: dict[ObjectKey, str] = field(default_factory=dict)  # created, configured, unchanged, pruned, checked
    components: dict[ObjectKey, str] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    skipped: list[ObjectKey] = field(default_factory=list)  # webhook configurations left out

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions.values() if a == action)

    @property
    def changes(self) -> int:
        return sum(1 for a in self.actions.values() if a in ("created", "configured", "pruned"))

    def pruned(self) -> list[tuple[ObjectKey, str]]:
        """The objects pruned and the components they belonged to, by apiVersion, kind, namespace and name."""
        return sorted(((key, self.components[key]) for key, action in self.actions.items() if action == "pruned"),
                      key=lambda pair: by_api_version(pair[0]))


def by_api_version(key: ObjectKey) -> tuple[str, str, str, str]:
    """The order apply lists and prunes objects in."""
    return key.api_version, key.kind, key.namespace, key.name


Progress = Callable[[str, int, int, float], None]


class Cluster:
    """The API server, through the Kubernetes Python client's dynamic client."""

    def __init__(self, kubeconfig: str | None, timeout: float = 300.0):
        from kubernetes import config, dynamic
        from kubernetes.client import exceptions

        try:
            api_client = config.new_client_from_config(config_file=kubeconfig)
        except (config.ConfigException, OSError) as err:
            raise InputError(f"cannot use kubeconfig {kubeconfig or '(default)'}: {err}") from None
        self._exceptions = exceptions
        try:
            self.client = dynamic.DynamicClient(api_client)
        except Exception as err:  # the first request: connection refused, bad certificate, unauthorized
            raise BuildError(f"cannot reach the API server of kubeconfig {kubeconfig or '(default)'}: {err}") from None
        self.timeout = timeout

    def resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            return self.client.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self.client.resources.invalidate_cache()  # a CRD applied since the last discovery
            return self.client.resources.get(api_version=api_version, kind=kind)

    def get(self, ref: ObjectKey) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self.resource(ref.api_version, ref.kind)
        try:
            return _json(resource.get(name=ref.name, namespace=ref.namespace or None, serialize=False))
        except NotFoundError:
            return None

    def apply(self, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        ref = ObjectKey.from_manifest(obj)
        resource = self.resource(ref.api_version, ref.kind)
        options: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": True}
        if dry_run:
            options["dry_run"] = "All"
        return _json(self.client.server_side_apply(resource, body=obj, name=ref.name, namespace=ref.namespace or None,
                                                   serialize=False, **options))

    def delete(self, ref: ObjectKey) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        with contextlib.suppress(NotFoundError, ResourceNotFoundError):  # already gone, or its CRD went first
            self.resource(ref.api_version, ref.kind).delete(name=ref.name, namespace=ref.namespace or None)

    def wait_established(self, crd_names: list[str]) -> None:
        """Wait until every named CRD is Established, so that its custom resources can be applied."""
        deadline = time.monotonic() + self.timeout
        pending = sorted(crd_names)
        with ThreadPoolExecutor(max_workers=APPLY_WORKERS) as pool:
            while pending:
                pending = [name for name, done in zip(pending, pool.map(self._established, pending), strict=True) if not done]
                if not pending:
                    return
                if time.monotonic() > deadline:
                    raise BuildError(f"CRDs {', '.join(pending)} did not become Established within {self.timeout:.0f}s")
                time.sleep(0.2)

    def _established(self, crd_name: str) -> bool:
        crd = self.get(ObjectKey.from_api_version("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", crd_name)) or {}
        conditions = {c.get("type"): c.get("status") for c in (crd.get("status") or {}).get("conditions") or []}
        return conditions.get("Established") == "True"

    def wait_endpoints(self, namespace: str, service: str) -> None:
        deadline = time.monotonic() + self.timeout
        ref = ObjectKey.from_api_version("v1", "Endpoints", namespace, service)
        while True:
            endpoints = self.get(ref) or {}
            if any(subset.get("addresses") for subset in endpoints.get("subsets") or []):
                return
            if time.monotonic() > deadline:
                raise BuildError(f"Service {namespace}/{service} has no ready endpoints after {self.timeout:.0f}s; "
                                 "its webhook cannot answer (is the workload running?)")
            time.sleep(1.0)

    def api_error(self, err: Exception) -> str | None:
        """The server's message for a refused request, or None when err is not an API error."""
        status = getattr(err, "status", None)
        body = getattr(err, "body", None)
        if status is None:
            return None
        try:
            message = json.loads(body).get("message") if body else None
        except (ValueError, AttributeError):
            message = None
        return f"{status}: {message or getattr(err, 'reason', '') or err}"


def _json(response: Any) -> dict[str, Any]:
    """The body of a raw response. The client's own wrapping of every nested field costs more than the
    request itself on large objects such as CRDs."""
    body: dict[str, Any] = json.loads(response.data)
    return body


def _order(obj: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = obj.get("kind", "")
    position = _WEBHOOK_POSITION if kind in WEBHOOK_KINDS else KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    ref = ObjectKey.from_manifest(obj)
    return position, kind, ref.namespace, ref.name


def _labelled(obj: dict[str, Any], environment: str, component: str) -> dict[str, Any]:
    labelled: dict[str, Any] = json.loads(json.dumps(obj))
    labels = labelled.setdefault("metadata", {}).setdefault("labels", {}) or {}
    labels.update({LABEL_ENVIRONMENT: environment, LABEL_COMPONENT: component, LABEL_MANAGED_BY: FIELD_MANAGER})
    labelled["metadata"]["labels"] = labels
    labelled["metadata"].pop("creationTimestamp", None)
    return labelled


def _webhook_services(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {(w["clientConfig"]["service"]["namespace"], w["clientConfig"]["service"]["name"])
            for w in obj.get("webhooks") or [] if (w.get("clientConfig") or {}).get("service")}


def _inventory_ref(environment: str) -> ObjectKey:
    return ObjectKey.from_api_version("v1", "ConfigMap", INVENTORY_NAMESPACE, f"kfgen-inventory-{environment}")


def read_inventory(cluster: Cluster, environment: str) -> dict[ObjectKey, str]:
    """What the last apply of the environment left in the cluster: object -> component."""
    stored = cluster.get(_inventory_ref(environment))
    entries = json.loads(((stored or {}).get("data") or {}).get("objects", "[]"))
    return {ObjectKey.from_api_version(*entry[1:]): entry[0] for entry in entries}


def _write_inventory(cluster: Cluster, environment: str, objects: dict[ObjectKey, str]) -> None:
    ref = _inventory_ref(environment)
    entries = sorted([component, r.api_version, r.kind, r.namespace, r.name] for r, component in objects.items())
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": ref.name, "namespace": ref.namespace,
                                "labels": {LABEL_ENVIRONMENT: environment, LABEL_MANAGED_BY: FIELD_MANAGER}},
                   "data": {"objects": json.dumps(entries, separators=(",", ":"))}}, dry_run=False)


def apply_environment(
    cluster: Cluster,
    build: EnvironmentBuild,
    extra: dict[str, list[dict[str, Any]]] | None = None,
    dry_run: bool = False,
    wait_workloads: bool = True,
    prune: bool = True,
    progress: Progress | None = None,
) -> ApplyReport:
    """Apply (or dry-run) every component of one built environment; see the module docstring.

    extra holds objects applied with a component that are not in the build (the local backend's Secrets).
    In apply mode a component with rejected objects stops the run: what depends on it would fail too."""
    environment = build.environment
    report = ApplyReport(environment, dry_run)
    previous = {} if dry_run else read_inventory(cluster, environment)
    started = time.perf_counter()
    ordered = [(c.name, sorted(list(c.objects) + list((extra or {}).get(c.name, [])), key=_order)) for c in build.components]
    # Every component's CRDs first, all at once: they depend on nothing, and the API server then
    # establishes them side by side instead of one component after another.
    crds = [(name, o) for name, objects in ordered for o in objects if o["kind"] == "CustomResourceDefinition"]
    rejected = _apply_stage(cluster, report, crds, dry_run)
    cluster.wait_established([ref.name for ref in map(ObjectKey.from_manifest, (o for _, o in crds)) if ref in report.actions])
    for index, (name, objects) in enumerate(ordered, start=1):
        if rejected and not dry_run:
            break
        rest = [o for o in objects if o["kind"] != "CustomResourceDefinition"]
        rejected = _apply_component(cluster, report, name, rest, dry_run, wait_workloads) or rejected
        if progress:
            progress(name, index, len(ordered), time.perf_counter() - started)
    if rejected and not dry_run:
        _write_inventory(cluster, environment, _remembered(previous, report.components))  # nothing applied is forgotten
        return report
    if not dry_run:
        current = dict(report.components)
        if prune:
            _prune(cluster, report, {ref: c for ref, c in previous.items() if ref not in current})
        else:
            current = _remembered(previous, current)
        _write_inventory(cluster, environment, current)
    return report


def _remembered(previous: dict[ObjectKey, str], applied: dict[ObjectKey, str]) -> dict[ObjectKey, str]:
    """The inventory after an apply: what was applied now and, besides, what the previous inventory holds. An object
    applied in another version than recorded is recorded in the new one (keys ignore the version: a plain merge
    would keep the old key)."""
    return {**{ref: c for ref, c in previous.items() if ref not in applied}, **applied}


def _apply_component(cluster: Cluster, report: ApplyReport, component: str, objects: list[dict[str, Any]],
                     dry_run: bool, wait_workloads: bool) -> bool:
    """Apply one component's objects (CRDs aside) stage by stage: the objects of one kind position at
    a time, in parallel, since nothing within a stage depends on another."""
    rejected = False
    for position, group in itertools.groupby(objects, key=lambda o: _order(o)[0]):
        stage = list(group)
        if position == _WEBHOOK_POSITION and not dry_run:
            if not wait_workloads:
                report.skipped.extend(ObjectKey.from_manifest(o) for o in stage)  # nothing runs to answer them; registering would block admission
                continue
            for namespace, service in sorted(set().union(*(_webhook_services(o) for o in stage))):
                cluster.wait_endpoints(namespace, service)
        rejected = _apply_stage(cluster, report, [(component, o) for o in stage], dry_run) or rejected
    return rejected


def _apply_stage(cluster: Cluster, report: ApplyReport, stage: list[tuple[str, dict[str, Any]]], dry_run: bool) -> bool:
    """Apply (component, object) pairs that do not depend on each other, a few requests at a time; True if any was rejected."""
    for _, obj in stage:  # discovery is not thread-safe: resolve every kind before the workers start
        with contextlib.suppress(Exception):
            cluster.resource(obj["apiVersion"], obj["kind"])
    with ThreadPoolExecutor(max_workers=APPLY_WORKERS) as pool:
        outcomes = list(pool.map(lambda pair: _apply_one(cluster, report.environment, pair[0], pair[1], dry_run), stage))
    rejected = False
    for (component, obj), (action, rejection) in zip(stage, outcomes, strict=True):
        if rejection is not None:
            report.rejections.append(rejection)
            rejected = True
            continue
        ref = ObjectKey.from_manifest(obj)
        report.actions[ref] = action
        report.components[ref] = component
    return rejected


def _apply_one(cluster: Cluster, environment: str, component: str, obj: dict[str, Any],
               dry_run: bool) -> tuple[str, Rejection | None]:
    """Apply (or dry-run) one object: its action (created, configured, unchanged, checked) or its rejection."""
    ref = ObjectKey.from_manifest(obj)
    real = not dry_run or obj["kind"] in ("CustomResourceDefinition", "Namespace")
    try:
        before = cluster.get(ref) if real else None
        after = cluster.apply(_labelled(obj, environment, component), dry_run=not real)
    except ValueError as err:  # the client refuses before sending, e.g. a namespaced object without a namespace
        return "", Rejection(environment, component, ref, str(err))
    except Exception as err:
        message = cluster.api_error(err)
        if message is None:
            raise
        return "", Rejection(environment, component, ref, message)
    if not real:
        return "checked", None
    if before is None:
        return "created", None
    return ("unchanged" if _content(before) == _content(after) else "configured"), None


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without its write bookkeeping. The API server may write an identical object again (a
    PersistentVolumeClaim's protection finalizer is re-added on each update), which bumps only these."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": metadata}


def _prune(cluster: Cluster, report: ApplyReport, gone: dict[ObjectKey, str]) -> None:
    """Delete what left the spec: dependants first, CRDs and Namespaces last."""
    def last(ref: ObjectKey) -> int:
        return 2 if ref.kind == "Namespace" else 1 if ref.kind == "CustomResourceDefinition" else 0

    for ref in sorted(gone, key=lambda r: (last(r), by_api_version(r))):
        cluster.delete(ref)
        report.actions[ref] = "pruned"
        report.components[ref] = gone[ref]


def summary(report: ApplyReport) -> str:
    if report.dry_run:
        passed = sum(1 for a in report.actions.values() if a != "pruned")
        text = f"{report.environment}: {passed} objects passed server-side dry run, {len(report.rejections)} rejected"
    else:
        counts = ", ".join(f"{report.count(a)} {a}" for a in ("created", "configured", "unchanged", "pruned"))
        text = f"{report.environment}: {counts}, {len(report.rejections)} rejected"
    if report.skipped:
        text += (f"; left out {len(report.skipped)} webhook configurations (--no-wait-workloads: no workload runs to answer them): "
                 + ", ".join(r.name for r in report.skipped))
    return text


def rejections(reports: Iterable[ApplyReport]) -> list[Rejection]:
    return [r for report in reports for r in report.rejections]
