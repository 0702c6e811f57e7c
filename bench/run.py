"""The benchmark: kfgen against `kustomize build example` of kubeflow/manifests, in the same run.

Run with `make bench`. Each case alternates with the baseline (the same kustomize binary building
upstream 26.03 `example/`, its remote references resolved from the source cache), at least five
runs each, and reports medians and the ratio to the baseline. Results go to bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "generator"))

from kfgen.refs import RemoteDir  # noqa: E402
from kfgen.sources import SourceCache, vendor  # noqa: E402

KFGEN = [sys.executable, "-m", "kfgen"]
EXAMPLE = RemoteDir("github.com", "kubeflow", "manifests", "26.03", "example")


def cache_dirs() -> list[Path]:
    configured = os.environ.get("KFGEN_SOURCE_CACHE")
    return [Path(d) for d in configured.split(os.pathsep)] if configured else [PROJECT.parent / "shared" / "upstream"]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


class Bench:
    def __init__(self, runs: int, workdir: Path):
        self.runs = runs
        self.workdir = workdir
        self.kustomize = os.environ.get("KFGEN_KUSTOMIZE", str(PROJECT / ".tools" / "bin" / "kustomize"))
        self.env = dict(os.environ, KFGEN_KUSTOMIZE=self.kustomize,
                        KFGEN_SOURCE_CACHE=os.pathsep.join(str(d) for d in cache_dirs()))
        self.env.pop("KFGEN_CACHE_DIR", None)  # the cold cases need the project's own cache, emptied
        upstream = workdir / "upstream"
        vendor([EXAMPLE], SourceCache(cache_dirs()), upstream / "vendor")
        self.example = upstream / "vendor" / EXAMPLE.relpath
        self.project = workdir / "project"
        self.baseline_times: list[float] = []
        self.discarded = 0

    def prepare_project(self) -> None:
        """The shipped spec and catalog, vendored and rendered: what the check cases run on."""
        shutil.copytree(PROJECT / "components", self.project / "components")
        shutil.copytree(PROJECT / "policies", self.project / "policies")
        shutil.copytree(PROJECT / "customizations", self.project / "customizations")
        shutil.copy2(PROJECT / "platform.yaml", self.project / "platform.yaml")
        self.kfgen("vendor")
        self.kfgen("render")

    def kfgen(self, *args: str) -> float:
        return timed([*KFGEN, *args, "--project", str(self.project)], self.project, self.env)

    def baseline(self) -> float:
        seconds = timed([self.kustomize, "build", str(self.example), "-o", str(self.workdir / "example.yaml")], self.workdir, self.env)
        self.baseline_times.append(seconds)
        return seconds

    def drop_cache(self) -> None:
        """Empty the project's cache by moving it aside: removing it would free its inodes, which slows
        the files created in the minutes after (see render_time)."""
        cache = self.project / ".kfgen" / "cache"
        if cache.exists():
            self.discarded += 1
            cache.rename(self.workdir / f"discarded-cache-{self.discarded}")

    def alternate(self, name: str, case) -> dict[str, float | str]:
        ours, base = [], []
        for run in range(self.runs):
            base.append(self.baseline())
            ours.append(case(run))
            print(f"  {name} run {run + 1}: ours {ours[-1]:.2f}s, baseline {base[-1]:.2f}s", file=sys.stderr)
        ours_median, base_median = statistics.median(ours), statistics.median(base)
        return {"case": name, "median_s": round(ours_median, 3), "baseline_median_s": round(base_median, 3),
                "ratio": round(ours_median / base_median, 3), "runs": self.runs}


def many_environments(count: int) -> dict:
    spec = yaml.safe_load((PROJECT / "platform.yaml").read_text())
    template = spec["environments"][2]
    spec["profiles"] = [p for p in spec.get("profiles", []) if "environments" not in p]
    spec["components"] = {name: {"enabled": True} for name in ("knative-eventing", "training-operator", "model-registry")}
    spec["environments"] = []
    for index in range(count):
        env = json.loads(json.dumps(template))
        env["name"] = f"env-{index:02d}"
        env["domain"] = f"kubeflow-{index:02d}.example.com"
        spec["environments"].append(env)
    spec["defaultEnvironment"] = "env-00"
    return spec


def render_time(bench: Bench, count: int, run: int) -> float:
    """One render of count environments into a new project folder.

    The folders stay until the benchmark ends. On ext4 without a journal (bench/README.md's figures come from
    such a disk), the kernel will not reuse an inode freed in the last minutes and scans past every such
    inode for each file it creates: removing one run's 7,800 files made the next run take three to four
    times longer, which measured the removal, not the render."""
    folder = bench.workdir / f"render-{count}-{run}"
    shutil.copytree(PROJECT / "components", folder / "components")
    shutil.copytree(PROJECT / "customizations", folder / "customizations")  # the folders the shipped spec names
    (folder / "platform.yaml").write_text(yaml.safe_dump(many_environments(count), sort_keys=False))
    return timed([*KFGEN, "render", "--project", str(folder)], folder, bench.env)


CHECK_CASES = ("one_env_cold", "three_envs_cold", "no_change", "one_component_changed")
RENDER_CASES = {"render_10_envs": 10, "render_50_envs": 50}
PEER_CASE = "validate_vs_peer"


def run_check_cases(bench: Bench, selected: list[str]) -> list[dict[str, float | str]]:
    bench.prepare_project()
    spec_path = bench.project / "platform.yaml"
    original = spec_path.read_text()

    def one_env_cold(run: int) -> float:
        bench.drop_cache()
        return bench.kfgen("check", "--env", "local")

    def three_envs_cold(run: int) -> float:
        bench.drop_cache()
        return bench.kfgen("check")

    def no_change(run: int) -> float:
        return bench.kfgen("check")

    render_times: list[float] = []

    def one_component_changed(run: int) -> float:
        """What a reviewer waits on: `check` of a pull request that changed one setting (and its render)."""
        replicas = 3 + run  # a value no earlier run had: nothing of it is cached or recorded yet
        spec_path.write_text(original.replace("    model-registry:\n      replicas: 2\n",
                                              f"    model-registry:\n      replicas: {replicas}\n"))
        render_times.append(bench.kfgen("render"))  # the author's step, reported on its own
        return bench.kfgen("check")

    cases = {"one_env_cold": one_env_cold, "three_envs_cold": three_envs_cold, "no_change": no_change,
             "one_component_changed": one_component_changed}
    results = []
    warm = False
    for name in (n for n in CHECK_CASES if n in selected):
        if name in ("no_change", "one_component_changed") and not warm:
            bench.kfgen("check")  # these two start from a warm cache
            warm = True
        results.append(bench.alternate(name, cases[name]))
        if name == "one_component_changed":
            results[-1]["render_median_s"] = round(statistics.median(render_times), 3)
    spec_path.write_text(original)
    return results


def run_render_case(bench: Bench, name: str) -> dict[str, float | str]:
    times = [render_time(bench, RENDER_CASES[name], run) for run in range(bench.runs)]
    print(f"  {name}: " + ", ".join(f"{t:.2f}s" for t in times), file=sys.stderr)
    if not bench.baseline_times:  # only render cases were selected: the ratio still needs a baseline
        bench.baseline()
    median = statistics.median(times)
    baseline = statistics.median(bench.baseline_times)
    return {"case": name, "median_s": round(median, 3), "baseline_median_s": round(baseline, 3),
            "ratio": round(median / baseline, 3), "runs": bench.runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results.json"))
    parser.add_argument("--case", action="append", choices=[*CHECK_CASES, *RENDER_CASES, PEER_CASE], metavar="NAME",
                        help=f"run only this case (repeatable; default: all): {', '.join([*CHECK_CASES, *RENDER_CASES, PEER_CASE])}")
    args = parser.parse_args()
    selected = args.case or [*CHECK_CASES, *RENDER_CASES, PEER_CASE]
    results = []
    with tempfile.TemporaryDirectory(prefix="kfgen-bench-") as scratch:
        bench = Bench(args.runs, Path(scratch))
        if any(name in CHECK_CASES for name in selected):
            results.extend(run_check_cases(bench, selected))
        results.extend(run_render_case(bench, name) for name in RENDER_CASES if name in selected)
    peer = PROJECT / "bench" / "validate_vs_peer.py"
    if PEER_CASE in selected and peer.is_file():
        subprocess.run([sys.executable, str(peer)], cwd=PROJECT, env=dict(os.environ), check=True)
    previous = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else []
    merged = {entry["case"]: entry for entry in previous if isinstance(entry, dict)}
    merged.update({entry["case"]: entry for entry in results})
    Path(args.out).write_text(json.dumps(list(merged.values()), indent=2) + "\n")
    print(f"{'case':<24} {'ours (s)':>9} {'baseline (s)':>13} {'ratio':>7}")
    for entry in merged.values():
        print(f"{entry['case']:<24} {entry['median_s']:>9.2f} {entry['baseline_median_s']:>13.2f} {entry['ratio']:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
