"""kfgen check: generated files equal a fresh render (drift), and every built object passes the object checks.

A check of exactly the inputs of an earlier one repeats that check's report from its record (see
checkrecord.py) instead of running again; --no-cache and --server always run in full.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .common import add_build_arguments, add_project_arguments, add_source_arguments, build_cache

if TYPE_CHECKING:
    from ..checkrecord import CheckRecords


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_project_arguments(parser)
    parser.add_argument("--env", help="environment to build and check (default: all)")
    parser.add_argument("--drift-only", action="store_true", help="only compare generated files with a fresh render")
    parser.add_argument("--server", metavar="KUBECONFIG", help="also send every object through server-side dry run on this cluster "
                                                               "(in dependency order; CRDs and Namespaces are applied for real)")
    add_source_arguments(parser)
    add_build_arguments(parser)
    parser.set_defaults(run=run)


def _records(args: argparse.Namespace) -> CheckRecords | None:
    """The check records of this project and these arguments, or None when a check must always run."""
    from ..checkrecord import CheckRecords

    root = Path(args.project).resolve()
    cache = build_cache(args, root)
    if cache is None or args.server:  # a cluster is not an input a fingerprint can vouch for
        return None
    spec = Path(args.spec).resolve() if args.spec else root / "platform.yaml"
    arguments = [f"output={args.output}", f"env={args.env}", f"drift_only={args.drift_only}", *args.source_cache]
    return CheckRecords(cache, root, spec, arguments)


def run(args: argparse.Namespace) -> int:
    records = _records(args)
    record = records.recall() if records else None
    if record is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.written))
        sys.stderr.write(f"kfgen check: nothing changed since the check of {when}; its report follows (--no-cache runs it again)\n")
        sys.stdout.write(record.stdout)
        return record.exit_code
    from .check_full import run_check  # imported only when the check runs: a repeated check does not pay for it

    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        outcome = run_check(args)
    sys.stdout.write(report.getvalue())
    if records is not None and outcome.outside_files is not None:
        records.remember(outcome.exit_code, report.getvalue(), outcome.outside_files)
    return outcome.exit_code
