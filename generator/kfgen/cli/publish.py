"""kfgen publish: commit what each environment's controllers read to its deploy branch (see publish.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import (
    add_build_arguments,
    add_project_arguments,
    add_source_arguments,
    build_cache,
    load_project,
    progress_printer,
    rendered,
    source_cache,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", action="append", default=[], help="environment to publish (repeatable; default: all)")
    parser.add_argument("--push", metavar="REMOTE", help="then push the deploy branches to REMOTE (a remote's name or a URL; never forced)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="publish even when files the publish reads differ from the commit checked out (recorded as such)")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..publish import PublishOptions, publish

    project = load_project(args)
    spec = Path(args.spec).resolve() if args.spec else project.root / "platform.yaml"
    options = PublishOptions(tuple(args.env), args.allow_dirty, args.push, args.jobs)
    report = publish(project.root, spec, project.plan, rendered(project, args), source_cache(args, project.root),
                     build_cache(args, project.root), options, lambda env: progress_printer(f"hydrate {env}"))
    failed = report.push is not None and not report.push.ok
    if args.output == "json":
        provenance = report.provenance
        print(json.dumps({
            "skipped": report.skipped,
            "sourceCommit": provenance.source_commit if provenance else None,
            "specDigest": provenance.spec_digest if provenance else None,
            "sourceDirty": provenance.dirty if provenance else None,
            "environments": [{"environment": b.environment, "branch": b.branch, "commit": b.commit, "previous": b.previous,
                              "changed": b.changed, "files": b.files, "seconds": round(b.seconds, 3)} for b in report.branches],
            "push": {"remote": report.push.remote, "ok": report.push.ok, "message": report.push.message} if report.push else None,
        }))
    elif report.skipped:
        print(f"publish: nothing to publish: {report.skipped}")
    else:
        for b in report.branches:
            state = f"commit {b.commit[:12]}" if b.changed else f"unchanged ({b.commit[:12]})"
            print(f"{b.environment}: {b.branch} {state}, {b.files} files, {b.seconds:.1f}s")
        if report.push is not None and report.push.ok:
            print(f"pushed {', '.join(b.branch for b in report.branches)} to {report.push.remote}")
    if failed and report.push is not None:
        sys.stderr.write(f"kfgen publish: the push to {report.push.remote} was refused:\n{report.push.message}\n")
    return 1 if failed else 0
