"""kfgen images: every image an environment pulls, with its source, to fill a registry mirror."""

from __future__ import annotations

import argparse
import sys

from .common import add_build_arguments, add_project_arguments, add_source_arguments, built_environments, load_project, source_cache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment (default: the spec's default environment)")
    parser.add_argument("--format", choices=("list", "json", "skopeo"), default="list",
                        help="list: the image and its source per line; json; skopeo: a `skopeo sync --src yaml` file "
                             "keyed by source registry")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..images import environment_images, format_images
    from ..mirror import read_inputs

    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    inputs = read_inputs(project.plan, project.root, source_cache(args, project.root).directories)
    for _, build in built_environments(project, args, [env_plan], label="images"):
        images = environment_images(env_plan, project.platform.kubeflow_version, build.objects, inputs)
    sys.stdout.write(format_images(images, args.format))
    return 0
