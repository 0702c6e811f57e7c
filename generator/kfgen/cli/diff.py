"""kfgen diff: the objects a change adds, removes and alters, per environment and component."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..diff import format_json, format_markdown, format_text
from ..revisions import compare_revisions
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
    report = compare_revisions(root, args.base, args.head, source_cache(args, root), args.jobs, progress_printer, build_cache(args, root))
    formatter = {"text": format_text, "markdown": format_markdown, "json": format_json}[report_format(args)]
    print(formatter(report), end="")
    return 1 if report.changed else 0
