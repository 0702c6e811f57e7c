"""Our object validation against kubernetes-validate's, on the same built objects.

    .venv/bin/python bench/validate_vs_peer.py [--runs N] [--env ENV]

Builds the environment once (in a scratch copy of the project's spec and catalog, with sources from
the source cache), then times, in alternating runs, our validation of every object (cold: schemas
loaded and compiled again in each run) and kubernetes-validate's strict validation of the same
objects. kubernetes-validate has no schema for custom resources and skips them; we validate them
against their CRDs and skip none. Prints a table and records the medians in bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from kfgen.build import Builder, build_environment
from kfgen.catalog import load_catalog
from kfgen.objects import CrdIndex, Validator, clear_caches, kubernetes_schemas
from kfgen.output import write_tree
from kfgen.plan import make_plan
from kfgen.render import render
from kfgen.sources import LOCK_FILE, SourceCache, vendor, write_lock
from kfgen.spec import load_platform

PROJECT = Path(__file__).resolve().parents[1]
RESULTS = PROJECT / "bench" / "results.json"


def build_objects(env: str) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    """(component, object) pairs of one environment of the shipped spec, and its Kubernetes version."""
    os.environ.setdefault("KFGEN_KUSTOMIZE", str(PROJECT / ".tools" / "bin" / "kustomize"))
    caches = os.environ.get("KFGEN_SOURCE_CACHE")
    directories = [Path(d) for d in caches.split(os.pathsep) if d] if caches else [PROJECT.parent / "shared" / "upstream"]
    with tempfile.TemporaryDirectory(prefix="kfgen-bench-") as scratch:
        root = Path(scratch)
        shutil.copytree(PROJECT / "components", root / "components")
        shutil.copy(PROJECT / "platform.yaml", root / "platform.yaml")
        catalog = load_catalog(root / "components")
        plan = make_plan(load_platform(root / "platform.yaml", catalog), catalog)
        write_lock(root / LOCK_FILE, vendor(plan.source_roots, SourceCache(directories), root / "vendor"))
        write_tree(render(plan), root)
        build = build_environment(root, plan.environment(env), builder=Builder(PROJECT, root))
        return [(c.name, obj) for c in build.components for obj in c.objects], plan.platform.kubernetes_version


def ours(objects: list[dict[str, Any]], version: str, cold: bool) -> tuple[float, int, int]:
    """(seconds, objects with violations, objects without a schema)."""
    if cold:
        clear_caches()
    started = time.perf_counter()
    crds = CrdIndex([("", o) for o in objects if o.get("kind") == "CustomResourceDefinition"])
    validator = Validator(kubernetes_schemas(version), crds)
    invalid = unschemed = 0
    for obj in objects:
        violations = validator.validate(obj)
        invalid += bool(violations)
        unschemed += any(v.message.startswith("no schema for") for v in violations)
    return time.perf_counter() - started, invalid, unschemed


def peer(objects: list[dict[str, Any]], version: str) -> tuple[float, int, int, int]:
    """(seconds, invalid, skipped for want of a schema, failed otherwise)."""
    started = time.perf_counter()
    invalid = skipped = failed = 0
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError:
            invalid += 1
        except SchemaNotFoundError:
            skipped += 1
        except Exception:
            failed += 1
    return time.perf_counter() - started, invalid, skipped, failed


def record(entry: dict[str, Any]) -> None:
    entries = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.is_file() else []
    entries = [e for e in entries if e.get("case") != entry["case"]] + [entry]
    RESULTS.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="local")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"building {args.env} ...", file=sys.stderr)
    pairs, version = build_objects(args.env)
    objects = [obj for _, obj in pairs]
    cold, warm, baseline = [], [], []
    for run in range(args.runs):
        seconds, invalid, unschemed = ours(objects, version, cold=True)
        cold.append(seconds)
        warm.append(ours(objects, version, cold=False)[0])
        peer_seconds, peer_invalid, peer_skipped, peer_failed = peer(objects, version)
        baseline.append(peer_seconds)
        print(f"run {run + 1}: ours {seconds:.3f}s (warm {warm[-1]:.3f}s), kubernetes-validate {peer_seconds:.2f}s", file=sys.stderr)
    median, baseline_median = statistics.median(cold), statistics.median(baseline)
    entry = {
        "case": "validate_vs_peer",
        "environment": args.env,
        "kubernetes_version": version,
        "objects": len(objects),
        "runs": args.runs,
        "median_s": round(median, 4),
        "warm_median_s": round(statistics.median(warm), 4),
        "baseline": f"kubernetes-validate {kubernetes_validate.__version__} (strict)",
        "baseline_median_s": round(baseline_median, 4),
        "ratio": round(baseline_median / median, 1),
        "ratio_is": "baseline_median_s / median_s (how many times faster ours is)",
        "skipped": unschemed,
        "baseline_skipped": peer_skipped + peer_failed,
        "invalid": invalid,
        "baseline_invalid": peer_invalid,
    }
    rows = [("", "ours", "kubernetes-validate"),
            ("median seconds", f"{median:.3f} (warm {entry['warm_median_s']:.3f})", f"{baseline_median:.3f}"),
            ("objects validated", str(len(objects) - unschemed), str(len(objects) - peer_skipped - peer_failed)),
            ("objects skipped", str(unschemed), f"{peer_skipped + peer_failed} (no schema: {peer_skipped})"),
            ("objects invalid", str(invalid), str(peer_invalid))]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
    print(f"ours is {entry['ratio']}x faster ({args.runs} alternating runs each, medians; ours cold: schemas loaded and compiled in every run)")
    record(entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
