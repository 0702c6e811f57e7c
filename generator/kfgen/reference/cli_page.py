"""docs/cli-reference.md, from the full argparse parser of kfgen."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from .markdown import _cell, _code, _header, _table

# docs/cli-reference.md

@contextmanager
def _bare_environment() -> Iterator[None]:
    """No environment variables while the parser is built: defaults read from them ($KUBECONFIG) stay out."""
    saved = dict(os.environ)
    os.environ.clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cli_parser() -> argparse.ArgumentParser:
    from ..cli import full_parser

    full_parser()  # imports every verb's module with the environment in place
    with _bare_environment():
        return full_parser()


def _verbs(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments but help: options in the order they were added, then positionals."""
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]
    return [a for a in actions if a.option_strings] + [a for a in actions if not a.option_strings]


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if isinstance(action.metavar, str):
        return action.metavar
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _usage_part(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"[{_metavar(action)}]" if action.nargs in ("?", "*") else _metavar(action)
    text = action.option_strings[-1] + (f" {_metavar(action)}" if _metavar(action) else "")
    if action.required:
        return text
    return f"[{text}]..." if isinstance(action, argparse._AppendAction) else f"[{text}]"


def _usage(prefix: str, parts: Sequence[str], width: int = 100) -> list[str]:
    lines, line = [], prefix
    for part in parts:
        if len(line) + 1 + len(part) > width and line.strip():
            lines.append(line)
            line = " " * len(prefix)
        line += " " + part if line.strip() else part
    return [*lines, line]


def _default(action: argparse.Action) -> str:
    default = action.default
    if default is None or default is argparse.SUPPRESS or default is False or default == []:
        return ""
    return _code(str(default))


def _option_rows(parser: argparse.ArgumentParser) -> list[list[str]]:
    rows = []
    for action in _options(parser):
        name = ", ".join(_code(o) for o in action.option_strings) if action.option_strings else _code(_metavar(action)) + " (positional)"
        value = _code(_metavar(action)) if _metavar(action) and action.choices is None and action.option_strings else ""
        notes = []
        if action.required:
            notes.append("required")
        if isinstance(action, argparse._AppendAction):
            notes.append("repeatable")
        if not action.option_strings and action.nargs == "?":
            notes.append("optional")
        value = ", ".join(p for p in [value, *notes] if p)
        choices = ", ".join(_code(str(c)) for c in action.choices) if action.choices is not None else ""
        rows.append([name, value, _default(action), choices, str(action.help or "")])
    return rows


# Not in the parser: written here by hand, from tools.py, cli/common.py and the Makefile.
_ENVIRONMENT = [
    ["`KFGEN_SOURCE_CACHE`", "source caches, separated by `:` (`os.pathsep`), used when no `--source-cache` is given; "
                             "default: `../shared/upstream` beside the project"],
    ["`KFGEN_CACHE_DIR`", "the build cache (default: `.kfgen/cache` in the project); its keys hold contents, not paths, "
                          "so checkouts can share one"],
    ["`KFGEN_KUSTOMIZE`, `KFGEN_KUSTOMIZE_WORKER`, `KFGEN_CONFTEST`, `KFGEN_YAML2JSON`",
     "a tool's path; otherwise `.tools/bin/<tool>` in the project, then `PATH` (`make tools` installs them)"],
    ["`KUBECONFIG`", "default of `--kubeconfig` (`apply`, `status`), then `~/.kube/config`"],
    ["`GOGC`, `GOMEMLIMIT`", "when either is set, the Go tools kfgen runs (the kustomize worker, conftest) keep the "
                             "user's garbage collection settings instead of kfgen's fixed heap size"],
    ["`KFGEN_DEBUG`", "`1`: an internal error is raised with its traceback instead of being logged to `.kfgen/kfgen.log`"],
]


def cli_reference(top: argparse.ArgumentParser, summaries: Mapping[str, str]) -> str:
    """docs/cli-reference.md from the full parser (every verb's arguments) and each verb's summary."""
    verbs = _verbs(top)
    global_parts = [_usage_part(a) for a in _options(top)]
    lines = _header("the argparse parser (kfgen.cli.full_parser)")
    lines += [
        "# CLI reference: kfgen",
        "",
        str(top.description or ""),
        "",
        "```",
        *_usage("kfgen", [*global_parts, "VERB", "[options]"]),
        "```",
        "",
        "Run from the project root, or pass `--project DIR`. Every verb also takes `-h`/`--help`. Options of the verb go after it; "
        "the global options before it (`kfgen --output json validate`).",
        "",
        "Exit codes: 0 fine; 1 a check or build failed; 2 bad input or usage (with `file:line:column: error: path: message` "
        "lines); 70 an internal error (one line; the traceback, kfgen's version and the command line go to `.kfgen/kfgen.log`); "
        "130 interrupted.",
        "",
        "## Global options",
        "",
        *_table(["Option", "Value", "Default", "Choices", "Description"], _option_rows(top)),
        "",
        "## Verbs",
        "",
        *_table(["Verb", "What it does"], [[f"[`{name}`](#kfgen-{name})", summaries.get(name, "")] for name in verbs]),
        "",
    ]
    for name, parser in verbs.items():
        summary = _cell(summaries.get(name, ""))
        lines += [f"## kfgen {name}", "", summary[:1].upper() + summary[1:] + ".", "",
                  "```", *_usage(f"kfgen {name}", [_usage_part(a) for a in _options(parser)]), "```", ""]
        rows = _option_rows(parser)
        lines += [*_table(["Option", "Value", "Default", "Choices", "Description"], rows), ""] if rows else []
    lines += ["## Environment variables", "", *_table(["Variable", "What it sets"], _ENVIRONMENT), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


