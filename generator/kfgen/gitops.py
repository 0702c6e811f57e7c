"""GitOps objects per environment: what Argo CD or Flux needs to apply the platform in order.

    gitops/<env>/kustomization.yaml   what to apply once, by hand, to bootstrap the environment

Every controller follows the environment's branch, `GitOps.branch_for(env)`: the deploy branch that
`kfgen publish` writes (default), or the revision branch itself when the spec syncs from it.

Argo CD: an AppProject that allows only this repository, the environment's cluster and the
namespaces and cluster-scoped kinds the enabled components use; a root Application (app of apps)
over gitops/<env>/apps/, which holds one Application per component whose sync wave is the
component's wave in the dependency graph and whose destination is the component's namespace; and
the argocd-cm settings that make a wave wait for the real health of what the one before it applied.

Flux: a GitRepository, and a root Kustomization over gitops/<env>/components/, which holds one
Kustomization per component with `dependsOn` from the graph. A component that leaves the spec
leaves that folder, so the root prunes its Kustomization, whose own pruning removes its objects.
"""

from __future__ import annotations

import posixpath
from typing import Any

from .plan import EnvironmentPlan, Plan, PlannedComponent
from .spec import GitOps
from .yamlio import Manifest

IN_CLUSTER = "https://kubernetes.default.svc"
ARGO_API = "argoproj.io/v1alpha1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"

# Fields that controllers fill in after apply, or that the API server does not store as written: Argo CD must not see them as drift.
IGNORE_DIFFERENCES = [
    {"group": "admissionregistration.k8s.io", "kind": "MutatingWebhookConfiguration",
     "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
    {"group": "admissionregistration.k8s.io", "kind": "ValidatingWebhookConfiguration",
     "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
    # Two upstream CRDs say `preserveUnknownFields: false`, the default, which the API server does not
    # store; compared as written, they would be out of sync forever.
    {"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
     "jqPathExpressions": [".spec.conversion.webhook.clientConfig.caBundle", ".spec.preserveUnknownFields"]},
    # A resourceFieldRef without a divisor (Istio's gateway of v1.11.0) gets the API server's default, which
    # Argo CD then reports as a difference on every comparison, and self-heal re-applies it in a loop.
    *({"group": "apps", "kind": kind,
       "jqPathExpressions": [f".spec.template.spec.{containers}[]?.env[]?.valueFrom.resourceFieldRef.divisor"
                             for containers in ("initContainers", "containers")]}
      for kind in ("DaemonSet", "Deployment", "StatefulSet")),
]

# Argo CD stopped assessing Application health by default (1.8); waves only wait for children
# whose health is known, so the health check comes back as a customization. A child's own health is
# not enough: right after the root applies a changed child (kfgen publish pins each child to the
# content commit), the child still shows the health of what it synced before. So a child counts as
# Progressing until it has compared its current targetRevision and synced it, and as Degraded once a
# sync at that revision has failed for good (its retries spent), so that the root's wave fails instead
# of waiting forever and the next publish can heal it.
APPLICATION_HEALTH = """\
local function progressing(message)
  return {status = "Progressing", message = message}
end
if obj.status == nil or obj.status.sync == nil then
  return progressing("waiting for the application controller")
end
local sync = obj.status.sync
local wanted = nil
if obj.spec ~= nil and obj.spec.source ~= nil then
  wanted = obj.spec.source.targetRevision
end
local compared = nil
if sync.comparedTo ~= nil and sync.comparedTo.source ~= nil then
  compared = sync.comparedTo.source.targetRevision
end
if compared ~= wanted then
  return progressing("not compared at " .. tostring(wanted) .. " yet")
end
local operation = obj.status.operationState
if operation ~= nil then
  if operation.phase == "Running" or operation.phase == "Terminating" then
    return progressing(operation.message or "syncing")
  end
  local tried = nil
  if operation.syncResult ~= nil then
    tried = operation.syncResult.revision
  end
  if tried == nil and operation.operation ~= nil and operation.operation.sync ~= nil then
    tried = operation.operation.sync.revision
  end
  if (operation.phase == "Failed" or operation.phase == "Error") and tried == sync.revision then
    return {status = "Degraded", message = operation.message or "sync failed"}
  end
end
if sync.status ~= "Synced" then
  return progressing("sync status " .. tostring(sync.status))
end
if obj.status.health == nil then
  return progressing("no health reported yet")
end
return {status = obj.status.health.status, message = obj.status.health.message or ""}
"""


# Argo CD's built-in HPA health calls an autoscaler that cannot read metrics Degraded; on a cluster
# without metrics-server (kind) every autoscaler is so, and its wave never ends. This keeps Argo CD's
# meaning of each condition, except that a ScalingActive False for want of metrics (FailedGet*Metric)
# alone is Healthy: the autoscaler holds its replicas meanwhile. Argo CD's Lua has no string library.
HPA_HEALTH = """\
local no_metrics = {
  FailedGetResourceMetric = true, FailedGetContainerResourceMetric = true, FailedGetPodsMetric = true,
  FailedGetObjectMetric = true, FailedGetExternalMetric = true,
}
local degraded = {
  AbleToScale = {FailedGetScale = true, FailedUpdateScale = true},
  ScalingActive = {FailedGetResourceMetric = true, InvalidSelector = true},
}
local healthy = {
  AbleToScale = {SucceededRescale = true},
  ScalingLimited = {DesiredWithinRange = true, TooFewReplicas = true, TooManyReplicas = true},
}
local missing = nil
local conditions = {}
if obj.status ~= nil and obj.status.conditions ~= nil then
  conditions = obj.status.conditions
end
for _, condition in ipairs(conditions) do
  local reason = condition.reason or ""
  local message = condition.message or ""
  if condition.type == "ScalingActive" and condition.status == "False" and no_metrics[reason] then
    missing = message
  elseif degraded[condition.type] ~= nil and degraded[condition.type][reason] then
    return {status = "Degraded", message = message}
  elseif healthy[condition.type] ~= nil and healthy[condition.type][reason] then
    return {status = "Healthy", message = message}
  end
end
if missing ~= nil then
  return {status = "Healthy", message = "no metrics to scale on (is metrics-server installed?): " .. missing}
end
return {status = "Progressing", message = "Waiting to Autoscale"}
"""

# A CRD is ready when the API server serves it: Established True. Until then it is on its way, not
# broken; only names the API server refused (NamesAccepted False) need a person.
CRD_HEALTH = """\
local established = nil
local accepted = nil
if obj.status ~= nil and obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Established" then
      established = condition
    elseif condition.type == "NamesAccepted" then
      accepted = condition
    end
  end
end
if obj.metadata.deletionTimestamp ~= nil then
  return {status = "Progressing", message = "being deleted"}
end
if accepted ~= nil and accepted.status == "False" then
  return {status = "Degraded", message = "names not accepted: " .. (accepted.message or accepted.reason or "")}
end
if established ~= nil and established.status == "True" then
  return {status = "Healthy", message = "established"}
end
return {status = "Progressing", message = "waiting for the API server to establish it"}
"""

# Flux's `wait` counts a custom resource without kstatus conditions as ready at once; these say what
# ready means for cert-manager's issuers and certificates. Flux evaluates inProgress, failed, current
# in turn; an object cert-manager has not touched yet has no status, which Flux reports as an
# evaluation error and keeps waiting on, as it should.
_CERT_MANAGER_READY = ("has(status.conditions) && status.conditions.exists(c, c.type == 'Ready' && c.status == 'True'"
                       " && (!has(c.observedGeneration) || c.observedGeneration == metadata.generation))")
# Issuers: cert-manager stops retrying these reasons until the spec changes (a bad ACME server URL...);
# others (an ACME server unreachable, a CA secret not issued yet) may pass.
_ISSUER_FAILED = ("has(status.conditions) && status.conditions.exists(c, c.type == 'Ready' && c.status == 'False'"
                  " && c.reason in ['InvalidConfig', 'InvalidURL'])")
# Certificates: Ready is False while issuance goes on; an issuance that failed or was denied is
# reported on Issuing, and cert-manager backs off for an hour before trying again.
_CERTIFICATE_FAILED = ("has(status.conditions) && status.conditions.exists(c, c.type == 'Issuing' && c.status == 'False'"
                       " && c.reason in ['Failed', 'Denied'])")
CERT_MANAGER_HEALTH = [
    {"apiVersion": "cert-manager.io/v1", "kind": kind, "failed": failed, "current": _CERT_MANAGER_READY}
    for kind, failed in (("ClusterIssuer", _ISSUER_FAILED), ("Issuer", _ISSUER_FAILED), ("Certificate", _CERTIFICATE_FAILED))
]
CERT_MANAGER_GROUP = "cert-manager.io"


def _labels(plan: Plan, env: str, component: str | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/part-of": plan.platform.name, "app.kubernetes.io/managed-by": "kfgen",
              "kfgen.dev/environment": env}
    if component:
        labels["kfgen.dev/component"] = component
    return labels


def _repo_path(gitops: GitOps, *parts: str) -> str:
    return posixpath.normpath(posixpath.join(gitops.path, *parts))


def _sync_path(gitops: GitOps, env: str, component: str) -> str:
    return _repo_path(gitops, "rendered" if gitops.hydrated else "overlays", env, component)


def _server(env_plan: EnvironmentPlan) -> str:
    return env_plan.environment.cluster.server or IN_CLUSTER


def _split_kind(entry: str) -> dict[str, str]:
    group, _, kind = entry.rpartition("/")
    return {"group": group, "kind": kind}


def argocd_project(plan: Plan, env_plan: EnvironmentPlan) -> Manifest:
    gitops = plan.platform.gitops
    release = plan.platform.kubeflow_version
    # Profile namespaces too: tenants creates them with the contributors' bindings.
    # Each component's own namespace too: its Application's destination.
    namespaces = sorted({ns for p in env_plan.components for ns in p.component.releases[release].namespaces}
                        | {p.component.namespace for p in env_plan.components}
                        | {profile.name for profile in env_plan.environment.profiles})
    kinds = sorted({k for p in env_plan.components for k in p.component.releases[release].cluster_kinds})
    destinations = [{"server": _server(env_plan), "namespace": ns} for ns in namespaces]
    # The root Application creates the component Applications next to Argo CD itself.
    destinations.append({"server": IN_CLUSTER, "namespace": gitops.namespace})
    return {
        "apiVersion": ARGO_API,
        "kind": "AppProject",
        "metadata": {"name": f"{plan.platform.name}-{env_plan.name}", "namespace": gitops.namespace,
                     "labels": _labels(plan, env_plan.name)},
        "spec": {
            "description": f"Kubeflow platform {plan.platform.name}, environment {env_plan.name}",
            "sourceRepos": [gitops.repo_url],
            "destinations": destinations,
            "clusterResourceWhitelist": [_split_kind(k) for k in kinds],
            "namespaceResourceWhitelist": [{"group": "*", "kind": "*"}],
        },
    }


def _sync_policy(gitops: GitOps) -> dict[str, Any]:
    return {
        "automated": {"prune": gitops.prune, "selfHeal": gitops.self_heal},
        # Server-side apply leaves alone the fields others own (cert-manager's caBundles), so ignoreDifferences
        # need only shape the comparison. RespectIgnoreDifferences would copy the live values of the ignored
        # paths into what is applied, by list index: after an upgrade reorders a container's env, that put a
        # divisor into the wrong variable and the API server refused the Deployment.
        "syncOptions": ["ServerSideApply=true", "PruneLast=true"],
        # A few quick retries ride out what settles by itself (a CRD and its resources in one sync); a change
        # the cluster keeps refusing then fails at once, so the waves after it stop and `kfgen status` says
        # why, until the next publish. Argo CD does not retry a failed revision on its own.
        "retry": {"limit": 3, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "1m"}},
    }


def argocd_application(plan: Plan, env_plan: EnvironmentPlan, planned: PlannedComponent) -> Manifest:
    gitops = plan.platform.gitops
    return {
        "apiVersion": ARGO_API,
        "kind": "Application",
        "metadata": {
            "name": f"{env_plan.name}-{planned.name}",
            "namespace": gitops.namespace,
            "labels": _labels(plan, env_plan.name, planned.name),
            "annotations": {"argocd.argoproj.io/sync-wave": str(planned.wave)},
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": f"{plan.platform.name}-{env_plan.name}",
            "source": {"repoURL": gitops.repo_url, "targetRevision": gitops.branch_for(env_plan.name),
                       "path": _sync_path(gitops, env_plan.name, planned.name)},
            # A project allows named namespaces only; objects that name their own keep theirs.
            "destination": {"server": _server(env_plan), "namespace": planned.component.namespace},
            "syncPolicy": _sync_policy(gitops),
            "ignoreDifferences": IGNORE_DIFFERENCES,
        },
    }


def argocd_root(plan: Plan, env_plan: EnvironmentPlan) -> Manifest:
    gitops = plan.platform.gitops
    return {
        "apiVersion": ARGO_API,
        "kind": "Application",
        "metadata": {"name": f"{plan.platform.name}-{env_plan.name}", "namespace": gitops.namespace,
                     "labels": _labels(plan, env_plan.name)},
        "spec": {
            "project": f"{plan.platform.name}-{env_plan.name}",
            "source": {"repoURL": gitops.repo_url, "targetRevision": gitops.branch_for(env_plan.name),
                       "path": _repo_path(gitops, "gitops", env_plan.name, "apps")},
            "destination": {"server": IN_CLUSTER, "namespace": gitops.namespace},
            "syncPolicy": _sync_policy(gitops),
        },
    }


def argocd_cm(gitops: GitOps) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": gitops.namespace,
                     "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"}},
        "data": {
            "resource.customizations.health.argoproj.io_Application": APPLICATION_HEALTH,
            "resource.customizations.health.autoscaling_HorizontalPodAutoscaler": HPA_HEALTH,
            "resource.customizations.health.apiextensions.k8s.io_CustomResourceDefinition": CRD_HEALTH,
            # Aggregated ClusterRoles get their rules from the aggregation controller, not from git.
            "resource.compareoptions": "ignoreAggregatedRoles: true\n",
        },
    }


def flux_source(plan: Plan, env_plan: EnvironmentPlan) -> Manifest:
    gitops = plan.platform.gitops
    return {
        "apiVersion": FLUX_SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": f"{plan.platform.name}-{env_plan.name}", "namespace": gitops.namespace,
                     "labels": _labels(plan, env_plan.name)},
        "spec": {"interval": "1m", "url": gitops.repo_url, "ref": {"branch": gitops.branch_for(env_plan.name)}},
    }


def flux_root(plan: Plan, env_plan: EnvironmentPlan) -> Manifest:
    """The Kustomization that applies, and prunes, the components' Kustomizations."""
    gitops = plan.platform.gitops
    name = f"{plan.platform.name}-{env_plan.name}"
    return {
        "apiVersion": FLUX_KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": gitops.namespace, "labels": _labels(plan, env_plan.name)},
        "spec": {
            "interval": "10m",
            "retryInterval": "1m",
            "timeout": "5m",
            "path": "./" + _repo_path(gitops, "gitops", env_plan.name, "components"),
            "prune": gitops.prune,
            # The components' Kustomizations wait for their own objects; the root only hands them over.
            "wait": False,
            "sourceRef": {"kind": "GitRepository", "name": name},
        },
    }


def _may_create(plan: Plan, env_plan: EnvironmentPlan, planned: PlannedComponent, group: str) -> bool:
    """Whether a component may create custom resources of group: the CRDs come from it or from a
    component it depends on (what `kfgen check` holds every custom resource to)."""
    release = plan.platform.kubeflow_version
    enabled = {p.name: p.component for p in env_plan.components}
    seen: set[str] = set()
    pending = [planned.name]
    while pending:
        name = pending.pop()
        if name in seen or name not in enabled:
            continue
        seen.add(name)
        if any(crd.split(".", 1)[-1] == group for crd in enabled[name].releases[release].crds):
            return True
        pending.extend(enabled[name].depends_on)
    return False


def flux_kustomization(plan: Plan, env_plan: EnvironmentPlan, planned: PlannedComponent) -> Manifest:
    gitops = plan.platform.gitops
    spec: dict[str, Any] = {
        "interval": "10m",
        "retryInterval": "1m",
        # How long a component's objects may take to become ready. A wait that cannot end (objects a
        # component removed by an upgrade pruned after another component took them over) then costs this
        # long before the retry that restores them; Kubeflow's workloads are ready well within it.
        "timeout": "5m",
        "path": "./" + _sync_path(gitops, env_plan.name, planned.name),
        "prune": gitops.prune,
        "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": f"{plan.platform.name}-{env_plan.name}"},
    }
    depends = [f"{env_plan.name}-{d}" for d in planned.needs]
    if depends:
        spec["dependsOn"] = [{"name": name} for name in depends]
    if _may_create(plan, env_plan, planned, CERT_MANAGER_GROUP):
        spec["healthCheckExprs"] = [dict(check) for check in CERT_MANAGER_HEALTH]
    if env_plan.environment.cluster.server:
        spec["kubeConfig"] = {"secretRef": {"name": f"{env_plan.environment.cluster.name}-kubeconfig"}}
    if gitops.sops_secret:
        spec["decryption"] = {"provider": "sops", "secretRef": {"name": gitops.sops_secret}}
    return {
        "apiVersion": FLUX_KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": f"{env_plan.name}-{planned.name}", "namespace": gitops.namespace,
                     "labels": _labels(plan, env_plan.name, planned.name)},
        "spec": spec,
    }


def gitops_documents(plan: Plan, env_plan: EnvironmentPlan) -> dict[str, list[Manifest]]:
    """Files of gitops/<env>/ (relative to it) and the documents each holds; kustomizations listed last."""
    engine = plan.platform.gitops.engine
    files: dict[str, list[Manifest]] = {}
    if engine == "argocd":
        files["project.yaml"] = [argocd_project(plan, env_plan)]
        files["root.yaml"] = [argocd_root(plan, env_plan)]
        files["argocd-cm.yaml"] = [argocd_cm(plan.platform.gitops)]
        for planned in env_plan.components:
            files[f"apps/{planned.name}.yaml"] = [argocd_application(plan, env_plan, planned)]
        files["apps/kustomization.yaml"] = [_kustomization([f"{p.name}.yaml" for p in env_plan.components])]
        files["kustomization.yaml"] = [_kustomization(["argocd-cm.yaml", "project.yaml", "root.yaml"])]
    elif engine == "flux":
        files["source.yaml"] = [flux_source(plan, env_plan)]
        files["root.yaml"] = [flux_root(plan, env_plan)]
        for planned in env_plan.components:
            files[f"components/{planned.name}.yaml"] = [flux_kustomization(plan, env_plan, planned)]
        files["components/kustomization.yaml"] = [_kustomization([f"{p.name}.yaml" for p in env_plan.components])]
        files["kustomization.yaml"] = [_kustomization(["source.yaml", "root.yaml"])]
    return files


def _kustomization(resources: list[str]) -> Manifest:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
