"""GitOps objects per environment: what Argo CD or Flux needs to apply the platform in order.

    gitops/<env>/kustomization.yaml   what to apply once, by hand, to bootstrap the environment

Argo CD: an AppProject that allows only this repository, the environment's cluster and the
namespaces and cluster-scoped kinds the enabled components use; a root Application (app of apps)
over gitops/<env>/apps/, which holds one Application per component whose sync wave is the
component's wave in the dependency graph; and the argocd-cm settings that make a wave wait for the
health of the Applications before it.

Flux: a GitRepository and one Kustomization per component with `dependsOn` from the graph.
"""

from __future__ import annotations

import posixpath
from typing import Any

from .plan import EnvironmentPlan, Plan, PlannedComponent
from .spec import GitOps

IN_CLUSTER = "https://kubernetes.default.svc"
ARGO_API = "argoproj.io/v1alpha1"
FLUX_KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
FLUX_SOURCE_API = "source.toolkit.fluxcd.io/v1"

# Fields that controllers fill in after apply; Argo CD must not see them as drift.
IGNORE_DIFFERENCES = [
    {"group": "admissionregistration.k8s.io", "kind": "MutatingWebhookConfiguration",
     "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
    {"group": "admissionregistration.k8s.io", "kind": "ValidatingWebhookConfiguration",
     "jqPathExpressions": [".webhooks[]?.clientConfig.caBundle"]},
    {"group": "apiextensions.k8s.io", "kind": "CustomResourceDefinition",
     "jqPathExpressions": [".spec.conversion.webhook.clientConfig.caBundle"]},
]

# Argo CD stopped assessing Application health by default (1.8); waves only wait for children
# whose health is known, so the health check comes back as a customization.
APPLICATION_HEALTH = """\
hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
"""


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


def argocd_project(plan: Plan, env_plan: EnvironmentPlan) -> dict[str, Any]:
    gitops = plan.platform.gitops
    release = plan.platform.kubeflow_version
    # Profile namespaces too: tenants creates them with the contributors' bindings.
    namespaces = sorted({ns for p in env_plan.components for ns in p.component.releases[release].namespaces}
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
        "syncOptions": ["ServerSideApply=true", "RespectIgnoreDifferences=true", "PruneLast=true"],
        "retry": {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "3m"}},
    }


def argocd_application(plan: Plan, env_plan: EnvironmentPlan, planned: PlannedComponent) -> dict[str, Any]:
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
            "source": {"repoURL": gitops.repo_url, "targetRevision": gitops.revision,
                       "path": _sync_path(gitops, env_plan.name, planned.name)},
            "destination": {"server": _server(env_plan)},
            "syncPolicy": _sync_policy(gitops),
            "ignoreDifferences": IGNORE_DIFFERENCES,
        },
    }


def argocd_root(plan: Plan, env_plan: EnvironmentPlan) -> dict[str, Any]:
    gitops = plan.platform.gitops
    return {
        "apiVersion": ARGO_API,
        "kind": "Application",
        "metadata": {"name": f"{plan.platform.name}-{env_plan.name}", "namespace": gitops.namespace,
                     "labels": _labels(plan, env_plan.name)},
        "spec": {
            "project": f"{plan.platform.name}-{env_plan.name}",
            "source": {"repoURL": gitops.repo_url, "targetRevision": gitops.revision,
                       "path": _repo_path(gitops, "gitops", env_plan.name, "apps")},
            "destination": {"server": IN_CLUSTER, "namespace": gitops.namespace},
            "syncPolicy": _sync_policy(gitops),
        },
    }


def argocd_cm(gitops: GitOps) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": gitops.namespace,
                     "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"}},
        "data": {
            "resource.customizations.health.argoproj.io_Application": APPLICATION_HEALTH,
            # Aggregated ClusterRoles get their rules from the aggregation controller, not from git.
            "resource.compareoptions": "ignoreAggregatedRoles: true\n",
        },
    }


def flux_source(plan: Plan, env_plan: EnvironmentPlan) -> dict[str, Any]:
    gitops = plan.platform.gitops
    return {
        "apiVersion": FLUX_SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": f"{plan.platform.name}-{env_plan.name}", "namespace": gitops.namespace,
                     "labels": _labels(plan, env_plan.name)},
        "spec": {"interval": "1m", "url": gitops.repo_url, "ref": {"branch": gitops.revision}},
    }


def flux_kustomization(plan: Plan, env_plan: EnvironmentPlan, planned: PlannedComponent) -> dict[str, Any]:
    gitops = plan.platform.gitops
    enabled = {p.name for p in env_plan.components}
    spec: dict[str, Any] = {
        "interval": "10m",
        "retryInterval": "1m",
        "timeout": "10m",
        "path": "./" + _sync_path(gitops, env_plan.name, planned.name),
        "prune": gitops.prune,
        "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": f"{plan.platform.name}-{env_plan.name}"},
    }
    depends = [f"{env_plan.name}-{d}" for d in planned.component.depends_on if d in enabled]
    if depends:
        spec["dependsOn"] = [{"name": name} for name in depends]
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


def gitops_documents(plan: Plan, env_plan: EnvironmentPlan) -> dict[str, list[Any]]:
    """Files of gitops/<env>/ (relative to it) and the documents each holds; kustomizations listed last."""
    engine = plan.platform.gitops.engine
    files: dict[str, list[Any]] = {}
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
        for planned in env_plan.components:
            files[f"{planned.name}.yaml"] = [flux_kustomization(plan, env_plan, planned)]
        files["kustomization.yaml"] = [_kustomization(["source.yaml"] + [f"{p.name}.yaml" for p in env_plan.components])]
    return files


def _kustomization(resources: list[str]) -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
