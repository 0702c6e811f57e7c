"""kfgen render: write base/, overlays/ and the root kustomization from the spec."""

from __future__ import annotations

import argparse
import json

from ..output import write_tree
from .common import add_project_arguments, load_project, rendered


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    result = write_tree(rendered(project, args), project.root)
    if args.output == "json":
        print(json.dumps({"written": result.written, "removed": result.removed, "unchanged": result.unchanged}))
    else:
        for path in result.written:
            print(f"wrote   {path}")
        for path in result.removed:
            print(f"removed {path}")
        print(f"render: {len(result.written)} written, {len(result.removed)} removed, {result.unchanged} unchanged")
    return 0
