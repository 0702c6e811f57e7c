"""kfgen diff: the objects a change adds, removes and alters, per environment and component."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path

from ..diff import compare, format_json, format_markdown, format_text
from ..revisions import git_revision, snapshot, working_copy
from .common import add_build_arguments, add_source_arguments, build_cache, progress_printer, source_cache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=".", help="project root (default: the current directory)")
    parser.add_argument("--base", required=True, help="git revision to compare against (e.g. origin/main)")
    parser.add_argument("--head", help="git revision to compare (default: the working tree)")
    parser.add_argument("--format", choices=["text", "markdown", "json"], help="report format (default: from --output)")
    add_build_arguments(parser)
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def report_format(args: argparse.Namespace) -> str:
    return args.format or ("json" if args.output == "json" else "text")


def run(args: argparse.Namespace) -> int:
    root = Path(args.project).resolve()
    cache = source_cache(args, root)
    with ExitStack() as stack:
        base_tree = stack.enter_context(git_revision(root, args.base))
        head_tree = stack.enter_context(git_revision(root, args.head) if args.head else working_copy(root))
        before = snapshot(base_tree, root, args.base, cache, args.jobs, progress_printer(f"build {args.base}"), build_cache(args, root))
        after = snapshot(head_tree, root, args.head or "working tree", cache, args.jobs, progress_printer("build head"), build_cache(args, root))
    report = compare(before, after)
    formatter = {"text": format_text, "markdown": format_markdown, "json": format_json}[report_format(args)]
    print(formatter(report), end="")
    return 1 if report.changed else 0
