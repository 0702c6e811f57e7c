"""kfgen policy: run the Rego policies over every environment's objects, or compare with upstream's example."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..kustomize import find_kustomize, kustomize_build
from ..policies import (
    PolicyReport,
    environment_settings,
    find_conftest,
    load_exceptions,
    rule_counts,
    rules,
    run_policies,
    unused_exceptions,
)
from ..refs import RemoteDir
from ..sources import SourceCache, vendor
from ..yamlio import Manifest, load_all_plain
from .common import (
    Project,
    add_build_arguments,
    add_project_arguments,
    add_source_arguments,
    built_environments,
    load_project,
    source_cache,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", action="append", help="environment to check (repeatable; default: all)")
    parser.add_argument("--compare-upstream", action="store_true",
                        help="print a Markdown table comparing upstream's example with one environment (the first --env, "
                             "default: the first production environment), rule by rule")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    policy_dir = project.root / "policies"
    conftest = find_conftest(project.root)
    exceptions = load_exceptions(policy_dir)
    names = args.env or [e.name for e in project.platform.environments]
    if args.compare_upstream:
        production = [e.name for e in project.platform.environments if e.stage == "production"]
        names = names[:1] if args.env else (production or names)[:1]
    cache = source_cache(args, project.root)
    objects = {env_plan.name: {c.name: c.objects for c in built.components}
               for env_plan, built in built_environments(project, args, [project.plan.environment(n) for n in names])}
    reports = [run_policies(conftest, policy_dir, name, environment_settings(project.platform.environment(name)),
                            objects[name], exceptions) for name in names]
    if args.compare_upstream:
        return compare_upstream(project, policy_dir, conftest, names[0], objects[names[0]], reports[0], cache)
    unused = unused_exceptions(exceptions, reports) if not args.env else []
    violations = [v for r in reports for v in r.violations]
    if args.output == "json":
        print(json.dumps({"violations": [v.__dict__ for v in violations], "unusedExceptions": [e.__dict__ for e in unused]}, indent=2))
    elif args.output == "github":
        for v in violations:
            print(f"::error title=policy {v.rule}::{v.format()}")
        for e in unused:
            print(f"::error file=policies/exceptions.yaml::exception for [{e.rule}] {e.object} matches nothing")
    else:
        for v in violations:
            print(v.format())
        for e in unused:
            print(f"policies/exceptions.yaml: exception for [{e.rule}] {e.object} matches nothing; remove it")
        for report in reports:
            print(f"policy {report.environment}: {len(report.violations)} violations, {len(report.excepted)} excepted")
    return 1 if violations or unused else 0


def compare_upstream(project: Project, policy_dir: Path, conftest: str, env: str, ours: dict[str, list[Manifest]], report: PolicyReport,
                     cache: SourceCache) -> int:
    """Rule by rule: upstream's example/ build against one environment of ours (before and after exceptions)."""
    release = project.platform.kubeflow_version
    example = RemoteDir("github.com", "kubeflow", "manifests", release, "example")
    with tempfile.TemporaryDirectory(prefix="kfgen-upstream-") as scratch:
        vendor([example], cache, Path(scratch) / "vendor")
        upstream = load_all_plain(kustomize_build(find_kustomize(project.root), Path(scratch) / "vendor" / example.relpath))
    settings = environment_settings(project.platform.environment(env))
    upstream_report = run_policies(conftest, policy_dir, "upstream", settings, {"example": upstream}, [])
    raw_report = run_policies(conftest, policy_dir, env, settings, ours, [])
    counts = [rule_counts(r) for r in (upstream_report, raw_report, report)]
    print(f"| rule | upstream {release} `example/` | `{env}` | `{env}` after documented exceptions |")
    print("|---|---:|---:|---:|")
    for rule in rules(policy_dir):
        print(f"| {rule} | " + " | ".join(str(c.get(rule, 0)) for c in counts) + " |")
    print("| **objects** | " + " | ".join(str(n) for n in (len(upstream), sum(map(len, ours.values())), sum(map(len, ours.values())))) + " |")
    return 0
