"""kfgen check: the committed generated files equal a fresh render (drift)."""

from __future__ import annotations

import argparse
import json

from ..output import drift
from ..render import render
from .common import add_project_arguments, load_project


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("check", help="check that generated files match the spec")
    add_project_arguments(parser)
    parser.add_argument("--drift-only", action="store_true", help="only compare generated files with a fresh render")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    drifted = drift(render(project.plan), project.root)
    if args.output == "json":
        print(json.dumps({"drift": drifted}))
    elif args.output == "github":
        for path in drifted:
            print(f"::error file={path}::generated file differs from a fresh render; run `kfgen render`")
    else:
        for path in drifted:
            print(f"drift: {path} differs from a fresh render")
        print("check: " + (f"{len(drifted)} generated files drifted; run `kfgen render`" if drifted else "no drift"))
    return 1 if drifted else 0
