"""The CRDs of the components an environment's cluster provides (its own Istio, cert-manager, Knative).

kfgen does not install a provided component, yet other components' objects use its kinds (Istio's
AuthorizationPolicies, cert-manager's Certificates). To check those objects, the CRDs the catalog names
for the component are read from the same upstream sources kfgen would have installed it from: its
kustomization roots, vendored from the source caches into a scratch folder. A CRD the sources lack is an
error of the spec, located at the `provided: true` that asked for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from ..build import cached_json_lines, find_yaml2json
from ..buildcache import BuildCache, digest_text
from ..data import SOURCE_TREE
from ..errors import Problem, SpecError
from ..plan import EnvironmentPlan, Plan
from ..sources import SourceCache, Vendorer
from ..yamlio import load_all_plain


@dataclasses.dataclass(frozen=True)
class ProvidedCrds:
    crds: tuple[dict[str, Any], ...]
    digest: str  # of every file the CRDs were read from, for the keys of cached reports


def _documents(text: str, converted: BuildCache | None) -> list[Any]:
    converter = find_yaml2json(SOURCE_TREE or Path.cwd())
    if not converter:
        return load_all_plain(text)
    lines = cached_json_lines(converter, text, converted, digest_text("provided-crds-json", hashlib.sha256(text.encode()).hexdigest()))
    return [json.loads(line) for line in lines.splitlines() if line]


def provided_crds(plan: Plan, env_plan: EnvironmentPlan, sources: SourceCache, converted: BuildCache | None = None) -> ProvidedCrds:
    """The CRDs of every component env_plan's cluster provides; SpecError when its sources lack one."""
    release = plan.platform.kubeflow_version
    environment = env_plan.environment
    found: list[dict[str, Any]] = []
    digest = hashlib.sha256()
    problems: list[Problem] = []
    for name in environment.provided:
        component = plan.catalog.components[name]
        wanted = set(component.releases[release].crds)
        if not wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="kfgen-provided-") as scratch:
            vendorer = Vendorer(sources, Path(scratch))
            for root in component.releases[release].roots:
                vendorer.vendor_root(root)
            for relative in sorted(vendorer.copied):
                path = Path(scratch) / relative
                if path.suffix not in (".yaml", ".yml") or path.name.startswith("kustomization"):
                    continue
                text = path.read_text(encoding="utf-8")
                if "CustomResourceDefinition" not in text:
                    continue
                digest.update(str(relative).encode() + b"\0" + hashlib.sha256(text.encode()).digest())
                for document in _documents(text, converted):
                    if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition" \
                            and (document.get("metadata") or {}).get("name") in wanted:
                        found.append(document)
                        wanted.discard(document["metadata"]["name"])
        if wanted:
            where = environment.components[name].provided_at or Problem(plan.platform.file, 0, 0, "", "")
            problems.append(dataclasses.replace(where, message=(
                f"{name!r} is provided by the cluster in environment {environment.name!r}, but the source caches have no "
                f"{', '.join(sorted(wanted))} in its sources for Kubeflow {release}, so the objects that use them cannot be "
                "checked: add the sources to a cache, or install the component (enabled: true)")))
    if problems:
        raise SpecError(problems)
    return ProvidedCrds(tuple(found), digest.hexdigest())
