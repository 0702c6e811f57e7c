"""kfgen secrets: the Secrets an environment needs and where each value comes from; --generate fills the local backend."""

from __future__ import annotations

import argparse
import json

from ..credentials import fixed_value, generate_local_secrets, local_secrets_file, remote_reference, required_secrets, verify_sops_folder
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
        print(f"wrote {path.relative_to(project.root)} ({len(needed)} Secrets); apply it before the platform")
        for login in logins:
            print(f"login: {login}")
        return 0
    rows = []
    for secret in needed:
        for key in secret.keys:
            fixed = fixed_value(key, environment)
            if fixed is not None:
                source = f"fixed value {fixed!r}"
            elif backend.backend == "externalSecret":
                assert backend.store is not None  # the spec requires one with this backend
                remote_key, remote_property = remote_reference(key.credential, backend.key_prefix)
                source = f"{backend.store.kind}/{backend.store.name}: key {remote_key}, property {remote_property}"
            elif backend.backend == "local":
                source = f"random, in {local_secrets_file(project.root, environment.name).relative_to(project.root)}"
            elif backend.backend == "sops":
                source = f"encrypted, in {backend.path}/{secret.component}/"
            else:
                source = "create it before applying"
            rows.append({"component": secret.component, "namespace": secret.namespace, "secret": secret.name,
                         "key": key.name, "credential": key.credential, "source": source})
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
