"""kfgen upgrade: move the spec to another Kubeflow release (see upgrade.py) and show what the release changes."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..catalog import load_catalog
from ..diff import compare, format_json, format_markdown, format_text
from ..revisions import snapshot_working_tree
from ..upgrade import release_edit
from .common import add_build_arguments, add_source_arguments, build_cache, progress_printer, source_cache
from .diff import report_format


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", default=".", help="project root (default: the current directory)")
    parser.add_argument("--to", required=True, metavar="VERSION", help="the Kubeflow release to move to")
    parser.add_argument("--no-diff", action="store_true", help="edit the spec without building both releases")
    parser.add_argument("--format", choices=["text", "markdown", "json"], help="report format (default: from --output)")
    add_build_arguments(parser)
    add_source_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.project).resolve()
    spec_path = root / "platform.yaml"
    edit = release_edit(spec_path, load_catalog(root / "components"), args.to)
    if edit is None:
        print(f"upgrade: platform.yaml is already at Kubeflow {args.to}")
        return 0
    cache = source_cache(args, root)
    before = None
    if not args.no_diff:
        before = snapshot_working_tree(root, edit.from_release, cache, args.jobs, progress_printer(f"build {edit.from_release}"),
                                       build_cache(args, root))
    spec_path.write_text(edit.text, encoding="utf-8")
    print(f"upgrade: platform.yaml moved from Kubeflow {edit.from_release} to {args.to}; run `kfgen vendor` and `kfgen render`")
    if before is None:
        return 0
    after = snapshot_working_tree(root, args.to, cache, args.jobs, progress_printer(f"build {args.to}"), build_cache(args, root))
    formatter = {"text": format_text, "markdown": format_markdown, "json": format_json}[report_format(args)]
    print(formatter(compare(before, after)), end="")
    return 0
