"""``codesuggest data fetch``: the reference data from its official sources (:mod:`pipeline.kb.sources.fetch`)."""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from pipeline.commands import CommandRegistry
from pipeline.errors import DataFileError, InputError
from pipeline.kb.sources.fetch import DEFAULT_TIMEOUT, STATUS_FAILED, fetch_data, format_summary, load_data_sources


def register(registry: CommandRegistry) -> None:
    """Register ``codesuggest data fetch``."""
    parser = registry.command(
        "fetch",
        _run_fetch,
        help="Download the reference data from its official sources (copy from a local folder when offline).",
        group="data",
    )
    parser.add_argument("--out", type=Path, required=True, help="data folder to fill (e.g. data)")
    parser.add_argument("--fallback", type=Path, default=None, help="folder to copy from when a download fails")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per connection (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--sources", type=Path, default=None, help="sources file (default: the packaged list)")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB", help="fetch only matching paths")
    parser.add_argument("--link", action="store_true", help="symlink fallback files instead of copying them")
    parser.add_argument("--force", action="store_true", help="fetch again even when a verified copy is present")


def _run_fetch(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise InputError(f"--timeout must be positive, got {args.timeout:g}")
    if args.fallback is not None and not args.fallback.is_dir():
        raise InputError(f"--fallback {args.fallback}: no such folder")
    files = load_data_sources(args.sources)
    if args.only:
        files = [f for f in files if any(fnmatch.fnmatchcase(f.dest, pattern) for pattern in args.only)]
        if not files:
            raise InputError(f"--only {args.only} matches no entry of the sources file")
    results = fetch_data(
        files,
        args.out,
        args.fallback,
        timeout=args.timeout,
        link=args.link,
        force=args.force,
        progress=sys.stderr.isatty(),
    )
    sys.stdout.write(format_summary(results) + "\n")
    failed = [r for r in results if r.status == STATUS_FAILED]
    if failed:
        reasons = "; ".join(f"{r.dest} ({' / '.join(r.problems)})" for r in failed)
        raise DataFileError(
            f"{len(failed)} of {len(results)} data file(s) could not be downloaded "
            f"or found in the fallback folder: {reasons}"
        )
    return 0
