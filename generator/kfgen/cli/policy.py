"""kfgen policy: run the Rego policies over every environment's objects, or compare with upstream's example."""

from __future__ import annotations

import argparse
import json

from ..policies import (
    UpstreamComparison,
    compare_with_upstream,
    environment_settings,
    find_conftest,
    load_exceptions,
    run_policies,
    unused_exceptions,
)
from .common import (
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
        print_comparison(compare_with_upstream(project.root, conftest, project.platform.environment(names[0]),
                                               project.platform.kubeflow_version, objects[names[0]], reports[0], cache))
        return 0
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


def print_comparison(comparison: UpstreamComparison) -> None:
    """A Markdown table, rule by rule: upstream's example/ against one environment of ours (before and after exceptions)."""
    env = comparison.environment
    print(f"| rule | upstream {comparison.release} `example/` | `{env}` | `{env}` after documented exceptions |")
    print("|---|---:|---:|---:|")
    counts = (comparison.upstream, comparison.ours, comparison.ours_excepted)
    for rule in comparison.rules:
        print(f"| {rule} | " + " | ".join(str(c.get(rule, 0)) for c in counts) + " |")
    print("| **objects** | " + " | ".join(str(n) for n in (comparison.upstream_objects, comparison.our_objects, comparison.our_objects)) + " |")
