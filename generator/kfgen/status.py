"""Status: what the GitOps controllers say about each component of an environment, against the latest publish.

The controllers' objects are found by the labels gitops.py puts on them (kfgen.dev/environment, and
kfgen.dev/component on the per-component ones) in gitops.namespace:

- Argo CD: each Application's sync status, health, synced revision, last operation and error conditions;
- Flux: each Kustomization's Ready condition, last applied revision and whether it saw its latest spec,
  and the GitRepository's Ready condition and artifact revision.

A component is fine when its object exists and is synced (Argo CD: Synced and Healthy; Flux: Ready and
reconciled at its current generation) on the latest publish: the head of the environment's deploy
branch in this repository (or, when there is no local branch, its remote-tracking one). Objects of the
environment that no enabled component explains (a component taken out of the spec and not yet pruned)
are not fine either.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .apply import LABEL_COMPONENT, LABEL_ENVIRONMENT
from .errors import InputError, KfgenError
from .plan import EnvironmentPlan
from .spec import GitOps
from .yamlio import Manifest

if TYPE_CHECKING:
    from kubernetes.client import CustomObjectsApi

ARGO = ("argoproj.io", "v1alpha1", "applications", "Application")
FLUX_KUSTOMIZATION = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization")
FLUX_SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories", "GitRepository")
# How the controllers write a revision: Argo CD a bare commit id; Flux `<branch>@sha1:<id>` (older: `<branch>/<id>`).
_COMMIT = re.compile(r"(?:^|[@:/])([0-9a-f]{40}|[0-9a-f]{64})$")


class ClusterUnreachable(KfgenError):
    """The API server could not be asked. Exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class ObjectStatus:
    """One controller object and the verdict on it."""

    component: str  # "" for an object of the whole environment (root Application or Kustomization, GitRepository)
    kind: str
    name: str
    found: bool
    sync: str = ""  # Argo CD: sync status; Flux: the Ready condition's status and reason
    health: str = ""  # Argo CD: health status; Flux: the Healthy condition's status, when there is one
    revision: str = ""  # as the controller reports it
    message: str = ""  # the controller's own words: the last operation or the Ready condition
    problems: tuple[str, ...] = ()  # why it is not fine; empty when it is

    @property
    def ok(self) -> bool:
        return self.found and not self.problems


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    engine: str
    namespace: str
    branch: str
    published: str | None  # the commit the controllers should be on; None when this repository does not know it
    objects: tuple[ObjectStatus, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.objects)


def commit_of(revision: str) -> str | None:
    """The commit id in a revision as Argo CD or Flux reports it."""
    found = _COMMIT.search(revision or "")
    return found.group(1) if found else None


def latest_publish(project_root: Path, branch: str) -> str | None:
    """The head of branch here: the local branch, else origin's remote-tracking one, else the only remote's."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(project_root), *args], capture_output=True, text=True)

    local = git("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    if local.returncode == 0:
        return local.stdout.strip()
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/remotes/").stdout.splitlines()
    tracking = {ref: sha for ref, sha in (line.split() for line in refs) if ref.removeprefix("refs/remotes/").split("/", 1)[-1] == branch}
    if f"refs/remotes/origin/{branch}" in tracking:
        return tracking[f"refs/remotes/origin/{branch}"]
    return next(iter(tracking.values())) if len(tracking) == 1 else None


def _conditions(obj: Manifest) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def _revision_problem(live: str, published: str | None) -> list[str]:
    if published is None:
        return []
    commit = commit_of(live)
    if commit is None:
        return [f"no revision applied yet; the latest publish is {published[:12]}"]
    if commit != published:
        return [f"on revision {commit[:12]}, not the latest publish {published[:12]}"]
    return []


def argocd_status(app: Manifest, component: str, published: str | None) -> ObjectStatus:
    status = app.get("status") or {}
    sync = (status.get("sync") or {}).get("status") or "Unknown"
    health = (status.get("health") or {}).get("status") or "Unknown"
    revision = (status.get("sync") or {}).get("revision") or ""
    operation = status.get("operationState") or {}
    message = operation.get("message") or (status.get("health") or {}).get("message") or ""
    problems = []
    if sync != "Synced":
        drifted = [f"{r.get('kind')} {r.get('namespace') + '/' if r.get('namespace') else ''}{r.get('name')}"
                   for r in status.get("resources") or [] if r.get("status") not in (None, "Synced")]
        problems.append(f"sync {sync}" + (f" ({', '.join(drifted[:3])}{', ...' if len(drifted) > 3 else ''})" if drifted else ""))
    if health != "Healthy":
        problems.append(f"health {health}")
    # A sync that failed at an earlier revision says nothing of this one (a revert back to what is live needs no sync).
    tried = (operation.get("syncResult") or {}).get("revision") or ((operation.get("operation") or {}).get("sync") or {}).get("revision")
    if operation.get("phase") in ("Failed", "Error") and (tried is None or tried == revision):
        problems.append(f"last sync {operation['phase'].lower()}: {operation.get('message', '')}".rstrip(": "))
    problems.extend(f"{kind}: {c.get('message', '')}" for kind, c in sorted(_conditions(app).items()) if kind.endswith("Error"))
    problems.extend(_revision_problem(revision, published))
    return ObjectStatus(component, "Application", app["metadata"]["name"], True, sync, health, revision, message, tuple(problems))


def flux_status(obj: Manifest, component: str, published: str | None) -> ObjectStatus:
    status = obj.get("status") or {}
    conditions = _conditions(obj)
    ready = conditions.get("Ready") or {}
    healthy = conditions.get("Healthy")
    sync = f"{ready.get('status', 'Unknown')} ({ready['reason']})" if ready.get("reason") else ready.get("status", "Unknown")
    kind = obj.get("kind") or ""
    # A Kustomization says what it applied; a GitRepository which commit its artifact holds.
    applied = status.get("lastAppliedRevision") if kind == "Kustomization" else (status.get("artifact") or {}).get("revision")
    revision = applied or ""
    problems = []
    if (obj.get("spec") or {}).get("suspend"):
        problems.append("suspended")
    if status.get("observedGeneration", -1) != obj["metadata"].get("generation"):
        problems.append("its latest spec is not reconciled yet")
    if ready.get("status") != "True":
        problems.append(f"not ready ({ready.get('reason', 'no Ready condition')})")
    if healthy is not None and healthy.get("status") == "False":
        problems.append(f"unhealthy ({healthy.get('reason', '')})")
    problems.extend(_revision_problem(revision, published))
    return ObjectStatus(component, kind, obj["metadata"]["name"], True, sync,
                        healthy.get("status", "") if healthy else "", revision, ready.get("message", ""), tuple(problems))


def _list(api: CustomObjectsApi, resource: tuple[str, str, str, str], namespace: str, environment: str) -> list[Manifest] | None:
    """The objects of an environment; None when the cluster does not know the kind (its CRD is missing)."""
    from kubernetes.client.exceptions import ApiException

    group, version, plural, _ = resource
    try:
        listed = api.list_namespaced_custom_object(group, version, namespace, plural, label_selector=f"{LABEL_ENVIRONMENT}={environment}",
                                                   _request_timeout=60)
    except ApiException as err:
        if err.status == 404:
            return None
        raise ClusterUnreachable(f"cannot list {plural}.{group} in {namespace}: {err.status} {err.reason}") from None
    except Exception as err:  # connection refused, TLS, timeouts: urllib3's errors have no common base worth naming
        raise ClusterUnreachable(f"cannot reach the API server: {err}") from None
    # The client types a custom object list as object: it is the API server's JSON, a mapping.
    return sorted(cast(Manifest, listed).get("items") or [], key=lambda o: o["metadata"]["name"])


def custom_objects_api(kubeconfig: str | None) -> CustomObjectsApi:
    """The custom objects API of the cluster a kubeconfig names (the default kubeconfig when None)."""
    from kubernetes import client, config

    try:
        return client.CustomObjectsApi(config.new_client_from_config(config_file=kubeconfig))
    except (config.ConfigException, OSError) as err:
        raise InputError(f"cannot use kubeconfig {kubeconfig or '(default)'}: {err}") from None


def environment_status(api: CustomObjectsApi, gitops: GitOps, platform: str, env_plan: EnvironmentPlan, published: str | None,
                       content: str | None = None) -> EnvironmentStatus:
    """Every controller object of one environment, judged; a component with none is reported missing, and so is
    a missing root object (Argo CD's root Application; Flux's GitRepository and root Kustomization, all named
    <platform>-<env> as gitops.py names them). Argo CD's component Applications are judged against `content`,
    the commit `kfgen publish` pinned them to (the published head when None)."""
    env = env_plan.name
    pinned = content or published
    judge: Callable[[Manifest, str, str | None], ObjectStatus]
    if gitops.engine == "argocd":
        kinds = [ARGO]
        judge = argocd_status
    elif gitops.engine == "flux":
        kinds = [FLUX_SOURCE, FLUX_KUSTOMIZATION]
        judge = flux_status
    else:
        raise InputError("gitops.engine is 'none': no controller to ask; `kfgen apply` applies environments directly")
    enabled = [p.name for p in env_plan.components]
    results: list[ObjectStatus] = []
    crd_missing = []
    per_component: dict[str, list[Manifest]] = {}
    for resource in kinds:
        objects = _list(api, resource, gitops.namespace, env)
        if objects is None:
            crd_missing.append(resource[2] + "." + resource[0])
            continue
        for obj in objects:
            component = (obj["metadata"].get("labels") or {}).get(LABEL_COMPONENT, "")
            if component:
                per_component.setdefault(component, []).append(obj)
            else:
                results.append(judge(obj, "", published))
    kind = kinds[-1][3]
    roots = {(r.kind, r.name) for r in results}
    for resource in kinds:
        if (resource[3], f"{platform}-{env}") not in roots and resource[2] + "." + resource[0] not in crd_missing:
            results.insert(0, ObjectStatus("", resource[3], f"{platform}-{env}", False, problems=(
                f"no {resource[3]} {platform}-{env} labelled {LABEL_ENVIRONMENT}={env} in namespace {gitops.namespace} "
                f"(bootstrap: kubectl apply -k gitops/{env})",)))
    for name in enabled:
        found = per_component.pop(name, [])
        if not found:
            why = f"the cluster has no {' or '.join(crd_missing)} (is the controller installed?)" if crd_missing \
                else f"no {kind} labelled {LABEL_COMPONENT}={name} in namespace {gitops.namespace}"
            results.append(ObjectStatus(name, kind, f"{env}-{name}", False, problems=(why,)))
        results.extend(judge(obj, name, pinned if gitops.engine == "argocd" else published) for obj in found)
    for name, objects in sorted(per_component.items()):  # left the spec, not yet pruned
        for obj in objects:
            judged = judge(obj, name, pinned if gitops.engine == "argocd" else published)
            results.append(ObjectStatus(judged.component, judged.kind, judged.name, True, judged.sync, judged.health, judged.revision,
                                        judged.message, (f"component {name} is not enabled in {env}: not pruned yet", *judged.problems)))
    if not results and crd_missing:
        results.append(ObjectStatus("", kind, "", False, problems=(f"the cluster has no {' or '.join(crd_missing)}",)))
    return EnvironmentStatus(env, gitops.engine, gitops.namespace, gitops.branch_for(env), published, tuple(results))


def platform_status(project_root: Path, gitops: GitOps, platform: str, env_plans: list[EnvironmentPlan],
                    kubeconfig: str | None) -> list[EnvironmentStatus]:
    from .publish import Git, content_commit

    api = custom_objects_api(kubeconfig)
    statuses = []
    for env_plan in env_plans:
        published = latest_publish(project_root, gitops.branch_for(env_plan.name))
        content = content_commit(Git(project_root), published) if published else None
        statuses.append(environment_status(api, gitops, platform, env_plan, published, content))
    return statuses
