"""The objects under gitops/<env>/ and the CRDs of the GitOps controllers that define them, so that the
GitOps objects are checked like every other object."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..build import cached_json_lines, find_yaml2json
from ..buildcache import BuildCache, digest_text
from ..data import SOURCE_TREE
from ..gitops import gitops_documents
from ..plan import EnvironmentPlan, Plan
from ..refs import RemoteDir
from ..sources import SourceCache
from ..yamlio import load_all_plain

# The CRDs of the GitOps controllers, for validating the objects under gitops/<env>/.
CONTROLLER_CRDS: dict[str, tuple[RemoteDir, ...]] = {
    "argocd": (RemoteDir("github.com", "argoproj", "argo-cd", "v3.5.1", "manifests/crds"),),
    "flux": (RemoteDir("github.com", "fluxcd", "source-controller", "v1.9.1", "config/crd/bases"),
             RemoteDir("github.com", "fluxcd", "kustomize-controller", "v1.9.4", "config/crd/bases")),
}


def controller_crd_files(engine: str, cache: SourceCache) -> list[Path]:
    files: list[Path] = []
    for root in CONTROLLER_CRDS.get(engine, ()):
        _, folder = cache.find(root)
        files.extend(p for p in sorted(folder.glob("*.yaml")) if p.name != "kustomization.yaml")
    return files


def controller_crds(engine: str, cache: SourceCache, converted: BuildCache | None = None) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of a GitOps engine, from the source caches (their JSON kept in
    converted, by each file's digest)."""
    crds: list[dict[str, Any]] = []
    converter = find_yaml2json(SOURCE_TREE or Path.cwd())
    for path in controller_crd_files(engine, cache):
        text = path.read_text(encoding="utf-8")
        documents: list[Any]
        if converter:
            lines = cached_json_lines(converter, text, converted,
                                      digest_text("controller-crds-json", hashlib.sha256(text.encode()).hexdigest()))
            documents = [json.loads(line) for line in lines.splitlines() if line]
        else:
            documents = load_all_plain(text)
        crds.extend(doc for doc in documents if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition")
    return crds


def gitops_objects(plan: Plan, env_plan: EnvironmentPlan) -> list[dict[str, Any]]:
    """The objects under gitops/<env>/, without the kustomizations that list them."""
    return [doc for name, documents in gitops_documents(plan, env_plan).items()
            if name.rsplit("/", 1)[-1] != "kustomization.yaml" for doc in documents]
