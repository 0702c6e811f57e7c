"""The kfgen command line: parses arguments and hands each verb to its own module.

Errors are caught here and nowhere else: a KfgenError prints its message and exits with its code
(2 for bad input, 1 for a failed check or build); anything unexpected is an internal error, exit 70,
whose traceback goes to the project's .kfgen/kfgen.log (errorlog.py), or up, with KFGEN_DEBUG=1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from ..errors import KfgenError, Problem

# The verbs, in the order help lists them, with their summaries; each is the module of that name in this
# package, which adds the verb's arguments and runs it.
COMMANDS = {
    "validate": "validate the platform spec",
    "render": "render kustomize bases and overlays",
    "vendor": "vendor upstream sources from the caches into vendor/",
    "build": "build one environment's objects with kustomize",
    "hydrate": "write built objects to rendered/<env>/<component>/",
    "check": "check generated files against the spec and validate every built object",
    "policy": "run the policies in policies/ with conftest",
    "secrets": "list the Secrets an environment needs; generate them for the local backend",
    "apply": "apply an environment to a cluster in dependency order (server-side apply, pruning)",
    "publish": "commit what each environment's controllers read to its deploy branch",
    "status": "the GitOps controllers' view of each component: synced, healthy, on the latest publish",
    "diff": "compare the built platform of two revisions",
    "graph": "draw the dependency graph (mermaid or dot)",
    "images": "list every image an environment pulls, with its source (list, json, or a skopeo sync file)",
    "upgrade": "move platform.yaml to another Kubeflow release",
}
EXIT_INTERNAL = 70


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors exit 2 with our format
        self.print_usage(sys.stderr)
        sys.stderr.write(f"kfgen: error: {message}\n")
        raise SystemExit(2)


def parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The command line parser. Only the module of the verb argv names is imported (none for the top-level
    help, which lists the summaries): each verb imports what it needs, and a warm `kfgen check` should not
    wait for the rest."""
    top = _Parser(prog="kfgen", description="Validate, render and build a Kubeflow platform from platform.yaml.")
    top.add_argument("--output", choices=["text", "json", "github"], default="text", help="output format")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    chosen = _chosen_command(sys.argv[1:] if argv is None else argv)
    for name, summary in COMMANDS.items():
        command = sub.add_parser(name, help=summary)
        if name == chosen:  # the others are never parsed: they keep the verbs among the choices and in the help
            importlib.import_module(f"{__name__}.{name}").add_arguments(command)
    return top


def _chosen_command(argv: list[str]) -> str | None:
    """The verb argv names, or None when it names none or asks for the top-level help before one."""
    index = 0
    while index < len(argv):
        argument = argv[index]
        if argument in ("-h", "--help"):
            return None
        if argument == "--output":
            index += 2  # the option and its value
        elif argument.startswith("-"):
            index += 1
        else:
            return argument if argument in COMMANDS else None
    return None


def _escape(text: str, prop: bool = False) -> str:
    """GitHub workflow-command escaping: a message or property value cannot end the command early."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _annotation(p: Problem) -> str:
    props = [f"file={_escape(p.file, True)}"] if p.file else []
    if p.file and p.line:
        props += [f"line={p.line}", f"col={p.column}"]
    message = f"{p.path}: {p.message}" if p.path else p.message
    return f"::error {','.join(props)}::{_escape(message)}" if props else f"::error::{_escape(message)}"


def main(argv: list[str] | None = None) -> int:
    args = parser(argv).parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except KfgenError as err:
        problems: list[Problem] | None = getattr(err, "problems", None)
        if args.output == "json":
            import json

            payload = [p.__dict__ for p in problems] if problems else [{"message": str(err)}]
            print(json.dumps({"errors": payload}))
        elif args.output == "github" and problems:
            for p in problems:
                print(_annotation(p))
        sys.stderr.write(f"{err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("kfgen: interrupted\n")
        return 130
    except Exception as err:
        if os.environ.get("KFGEN_DEBUG", "") not in ("", "0"):
            raise  # the traceback where the developer is, and into a debugger (python -m pdb -m kfgen ...)
        from .errorlog import report_internal_error  # only a failed run pays for importing it

        sys.stderr.write(report_internal_error(err, getattr(args, "project", None), sys.argv[1:] if argv is None else argv))
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


def full_parser() -> argparse.ArgumentParser:
    """The parser with every verb's arguments, for the CLI reference (kfgen.reference). Unlike parser(),
    it imports every verb's module."""
    top = parser([])
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                importlib.import_module(f"{__name__}.{name}").add_arguments(command)
    return top
