"""kfgen upgrade: move the spec to another Kubeflow release and show what the release changes.

The spec is edited in place with a round-trip YAML parser, so comments and formatting stay as they
were; only the release (and, when the new release does not support it, the Kubernetes version) changes.
The edit is validated before it is written.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from ruamel.yaml import YAML

from ..catalog import load_catalog
from ..diff import compare, format_json, format_markdown, format_text
from ..errors import InputError
from ..resolve import resolve
from ..revisions import snapshot, working_copy
from ..yamlio import parse
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


def edit_release(text: str, version: str, kubernetes: tuple[str, ...]) -> str:
    """The spec text with kubeflow.version set (and kubernetes.version if the release needs it)."""
    yaml = YAML()  # round trip: comments, order and quoting survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    document = yaml.load(text)
    quote = type(document["kubeflow"]["version"])
    document["kubeflow"]["version"] = quote(version) if quote is not str else version
    if document["kubernetes"]["version"] not in kubernetes:
        document["kubernetes"]["version"] = type(document["kubernetes"]["version"])(kubernetes[-1])
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def run(args: argparse.Namespace) -> int:
    root = Path(args.project).resolve()
    spec_path = root / "platform.yaml"
    catalog = load_catalog(root / "components")
    if args.to not in catalog.kubernetes_versions:
        raise InputError(f"unknown Kubeflow release {args.to!r}; the catalog supports: {', '.join(catalog.releases)}")
    original = spec_path.read_text(encoding="utf-8")
    current = resolve(parse(original, "platform.yaml"), catalog)
    if current.kubeflow_version == args.to:
        print(f"upgrade: platform.yaml is already at Kubeflow {args.to}")
        return 0
    edited = edit_release(original, args.to, catalog.kubernetes_versions[args.to])
    resolve(parse(edited, f"platform.yaml (at Kubeflow {args.to})"), catalog)  # refuse an edit that breaks the spec
    cache = source_cache(args, root)
    before = None
    if not args.no_diff:
        with working_copy(root) as tree:
            before = snapshot(tree, root, current.kubeflow_version, cache, args.jobs, progress_printer(f"build {current.kubeflow_version}"),
                              build_cache(args, root))
    spec_path.write_text(edited, encoding="utf-8")
    print(f"upgrade: platform.yaml moved from Kubeflow {current.kubeflow_version} to {args.to}; run `kfgen vendor` and `kfgen render`")
    if before is None:
        return 0
    with working_copy(root) as tree:
        after = snapshot(tree, root, args.to, cache, args.jobs, progress_printer(f"build {args.to}"), build_cache(args, root))
    formatter = {"text": format_text, "markdown": format_markdown, "json": format_json}[report_format(args)]
    print(formatter(compare(before, after)), end="")
    return 0
