"""Publish to converged: the time from `kfgen publish` until the GitOps controller has every component
of `local` synced and healthy, against upstream's own install on the same kind of cluster.

Each case runs on a fresh test cluster (tests/e2e: kube-apiserver, controller manager, scheduler, KWOK's
fake nodes, the real cert-manager controller) with the real controller, Argo CD or Flux:

- converge_bootstrap_<engine>_<source>: `kfgen publish`, then the bootstrap of docs/guides/gitops.md
  (`kubectl apply -k gitops/local`), until every component is ready at the published commit;
- converge_one_component_<engine>_<source>: on that converged cluster, a merged change of one
  component's replicas: `kfgen publish`, the controller's refresh hook, until every component is ready
  at the new commit.

<source> is `overlays` (kustomize run by the controller on the published overlays, bases and vendored
sources) or `hydrated` (plain YAML per component). The baseline, run in the same process, is what
kubeflow/manifests tells its users: `kustomize build example | kubectl apply --server-side` repeated
until it succeeds (CRDs first), then waiting until every Deployment is Available, on a fresh cluster
of the same kind. Results are merged into bench/results.json; `make bench` runs this after run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT / "tests"), str(PROJECT / "generator")]

from e2e.certmanager import CertManager  # noqa: E402
from e2e.cluster import Cluster  # noqa: E402
from e2e.gitserver import GitServer  # noqa: E402
from e2e.platform import ENGINES, ENV, PlatformRepo  # noqa: E402
from kfgen.refs import RemoteDir  # noqa: E402
from kfgen.sources import SourceCache, vendor  # noqa: E402

UPSTREAM = PROJECT.parent / "shared" / "upstream"
# The platform repositories live in a scratch folder with no ../shared beside them: point them at the cache.
os.environ.setdefault("KFGEN_SOURCE_CACHE", str(UPSTREAM))
EXAMPLE = RemoteDir("github.com", "kubeflow", "manifests", "26.03", "example")
TIMEOUT = 1200.0


def converged(engine, components: set[str], revision: str) -> bool:
    states = engine.states()
    return set(states) >= components and all(states[c].ready and states[c].revision == revision for c in components)


def ours(engine_name: str, hydrated: bool, workdir: Path) -> dict[str, float]:
    with Cluster() as cluster, GitServer(workdir / "git") as server:
        certificates = CertManager(cluster)
        certificates.start()
        engine = ENGINES[engine_name](cluster)
        engine.start()
        try:
            def edit(spec: dict[str, Any]) -> None:
                spec["gitops"].update(engine=engine_name, hydrated=hydrated)

            repo = PlatformRepo(workdir / "repo", server)
            repo.create(edit)  # render, vendor, commit, push and publish: the publish is timed again below
            components = set(repo.build(workdir / "build"))
            repo.kfgen("secrets", "--generate", "--env", ENV)
            cluster.kubectl("apply", "-f", str(repo.root / ".secrets" / f"{ENV}.yaml"))

            started = time.perf_counter()
            repo.kfgen("publish", "--env", ENV, "--push", "origin")
            revision = repo.component_revision()
            engine.bootstrap(repo)
            cluster.wait_for(lambda: converged(engine, components, revision), TIMEOUT, "bootstrap", interval=0.5)
            bootstrap = time.perf_counter() - started

            def scale(spec: dict[str, Any]) -> None:
                local = next(e for e in spec["environments"] if e["name"] == ENV)
                local.setdefault("components", {})["central-dashboard"] = {"replicas": 2}

            spec = repo.spec()
            scale(spec)
            repo.write_spec(spec)
            repo.kfgen("render")
            repo.git("commit", "-q", "-am", "Two dashboard replicas")
            repo.git("push", "-q", "origin", "main")
            started = time.perf_counter()
            repo.kfgen("publish", "--env", ENV, "--push", "origin")
            revision = repo.component_revision()
            engine.refresh()
            cluster.wait_for(lambda: converged(engine, components, revision), TIMEOUT, "one changed component", interval=0.5)
            one_component = time.perf_counter() - started
        finally:
            engine.stop()
            certificates.stop()
    return {"bootstrap": bootstrap, "one_component": one_component}


def baseline(workdir: Path, kustomize: str) -> float:
    """kubeflow/manifests' own install of example/, on a fresh cluster, until every Deployment is Available."""
    vendor([EXAMPLE], SourceCache([UPSTREAM]), workdir / "upstream" / "vendor")
    example = workdir / "upstream" / "vendor" / EXAMPLE.relpath
    manifests = subprocess.run([kustomize, "build", str(example)], capture_output=True, text=True, check=True).stdout
    with Cluster() as cluster:
        certificates = CertManager(cluster)
        certificates.start()
        try:
            started = time.perf_counter()
            for _attempt in range(30):  # upstream's README: retry until the CRDs that later objects need exist
                applied = cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=manifests, check=False, timeout=600)
                if applied.returncode == 0:
                    break
                time.sleep(2)
            else:
                raise SystemExit(f"the baseline's apply never succeeded:\n{applied.stderr[-2000:]}")
            cluster.kubectl("wait", "--for=condition=Available", "deployment", "--all", "--all-namespaces", "--timeout=900s", timeout=960)
            return time.perf_counter() - started
        finally:
            certificates.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", choices=sorted(ENGINES), help="default: both")
    parser.add_argument("--source", action="append", choices=["overlays", "hydrated"], help="default: both")
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results.json"))
    args = parser.parse_args()
    kustomize = str(PROJECT / ".tools" / "bin" / "kustomize")
    results = []
    with tempfile.TemporaryDirectory(prefix="kfgen-converge-") as scratch:
        base = baseline(Path(scratch) / "baseline", kustomize)
        for engine in args.engine or sorted(ENGINES):
            for source in args.source or ["overlays", "hydrated"]:
                measured = ours(engine, source == "hydrated", Path(scratch) / f"{engine}-{source}")
                for case, seconds in measured.items():
                    results.append({"case": f"converge_{case}_{engine}_{source}", "median_s": round(seconds, 2),
                                    "baseline_median_s": round(base, 2), "ratio": round(seconds / base, 3), "runs": 1,
                                    "baseline": "kustomize build example | kubectl apply --server-side, until every Deployment is Available"})
                    print(f"{results[-1]['case']:<44} {seconds:8.1f} s  baseline {base:7.1f} s  ratio {seconds / base:.2f}", flush=True)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else []
    merged = {entry["case"]: entry for entry in previous if isinstance(entry, dict)}
    merged.update({entry["case"]: entry for entry in results})
    out.write_text(json.dumps(list(merged.values()), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
