"""The kfgen command line: parses arguments and hands each verb to its own module.

Errors are caught here and nowhere else: a KfgenError prints its message and exits with its code
(2 for bad input, 1 for a failed check or build); anything unexpected is an internal error, exit 70.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import KfgenError, Problem
from . import apply, build, check, diff, graph, hydrate, policy, render, secrets, upgrade, validate, vendor

COMMANDS = (validate, render, vendor, build, hydrate, check, policy, secrets, apply, diff, graph, upgrade)
EXIT_INTERNAL = 70


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2 with our format
        self.print_usage(sys.stderr)
        sys.stderr.write(f"kfgen: error: {message}\n")
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="kfgen", description="Validate, render and build a Kubeflow platform from platform.yaml.")
    top.add_argument("--output", choices=["text", "json", "github"], default="text", help="output format")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return top


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
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except KfgenError as err:
        if args.output == "json":
            import json

            problems = getattr(err, "problems", None)
            payload = [p.__dict__ for p in problems] if problems else [{"message": str(err)}]
            print(json.dumps({"errors": payload}))
        elif args.output == "github" and getattr(err, "problems", None):
            for p in err.problems:
                print(_annotation(p))
        sys.stderr.write(f"{err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("kfgen: interrupted\n")
        return 130
    except Exception as err:
        sys.stderr.write(f"kfgen: internal error: {type(err).__name__}: {err}\n")
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())
