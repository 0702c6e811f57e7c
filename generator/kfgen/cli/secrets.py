"""kfgen secrets: the Secrets an environment needs and where each value comes from; --generate fills the local backend."""

from __future__ import annotations

import argparse
import json

from ..credentials import generate_local_secrets, required_secrets, value_source, verify_sops_folder
from ..errors import BuildError
from .common import add_project_arguments, load_project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment (default: the spec's default environment)")
    parser.add_argument("--generate", action="store_true",
                        help="backend local: write random values to .secrets/<env>.yaml, keeping values already there")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    project = load_project(args)
    env_plan = project.plan.environment(args.env or project.platform.default_environment)
    environment = env_plan.environment
    backend = environment.secrets
    needed = required_secrets(project.plan, env_plan)
    if args.generate:
        path, logins = generate_local_secrets(project.plan, env_plan, project.root)
        print(f"wrote {path.relative_to(project.root)} ({sum(s.generated for s in needed)} Secrets); apply it before the platform")
        for login in logins:
            print(f"login: {login}")
        return 0
    rows = []
    for secret in needed:
        for key in secret.keys:
            rows.append({"component": secret.component, "namespace": secret.namespace, "secret": secret.name, "type": secret.type,
                         "key": key.name, "credential": key.credential, "source": value_source(secret, key, environment, project.root)})
    if args.output == "json":
        print(json.dumps({"environment": environment.name, "backend": backend.backend, "keys": rows}))
    else:
        print(f"environment {environment.name}: backend {backend.backend}, {len(needed)} Secrets")
        for row in rows:
            print(f"  {row['namespace']}/{row['secret']} {row['key']}: {row['source']}")
    problems = verify_sops_folder(project.plan, env_plan, project.root)
    if problems:
        raise BuildError("\n".join(problems))
    return 0
