"""kfgen validate: check the spec against its schema and the catalog; write nothing."""

from __future__ import annotations

import argparse
import json

from .common import add_project_arguments, load_project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    platform = project.platform
    if args.output == "json":
        print(json.dumps({"valid": True, "environments": [e.name for e in platform.environments]}))
    else:
        envs = ", ".join(f"{e.name} ({len(e.enabled)} components)" for e in platform.environments)
        print(f"{platform.file}: valid; Kubeflow {platform.kubeflow_version} on Kubernetes {platform.kubernetes_version}; {envs}")
    return 0
