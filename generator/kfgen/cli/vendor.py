"""kfgen vendor: copy the upstream sources of the enabled components into vendor/ and lock them."""

from __future__ import annotations

import argparse
import json

from ..sources import LOCK_FILE, vendor, write_lock
from .common import add_project_arguments, add_source_arguments, load_project, source_cache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    entries = vendor(project.plan.source_roots, source_cache(args, project.root), project.root / "vendor")
    write_lock(project.root / LOCK_FILE, entries)
    if args.output == "json":
        print(json.dumps([entry.__dict__ for entry in entries]))
    else:
        *sources, tree = entries
        for entry in sources:
            print(f"{entry.source}@{entry.ref}: {entry.files} files, sha256 {entry.sha256[:16]}")
        print(f"vendor: {len(sources)} sources, {tree.files} files into vendor/, locked in {LOCK_FILE}")
    return 0
