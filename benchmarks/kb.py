"""Knowledge-base benchmark: load time, memory and search latency, each in a fresh process.

``python -m benchmarks.kb --kb models/kb`` prints the figures that docs/benchmarks.md quotes.
The load is measured in a child process so that nothing the parent imported or cached counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.errors import ArtefactError
from pipeline.locations import default_kb_dir

logger = logging.getLogger(__name__)

# Queries timed after the search index is built: (text, system).
QUERIES: tuple[tuple[str, str | None], ...] = (
    ("sprain of right ankle", None),
    ("type 2 diabetes", None),
    ("ankle brace", "HCPCS"),
    ("office visit established patient", "CPT"),
    ("poisoning by acetaminophen accidental", None),
    ("malignant neoplasm of upper outer quadrant of left breast", None),
    ("essential hypertension", None),
    ("displaced fracture of right radial styloid subsequent encounter", None),
)
REPEATS = 20


def run(kb_dir: Path, repeats: int = REPEATS) -> dict[str, Any]:
    """Measure the knowledge base in a fresh Python process.

    Args:
        kb_dir: the artefact folder.
        repeats: how many times each query is timed.

    Returns:
        ``import_seconds``, ``load_seconds``, ``rss_mb`` (after load), ``peak_rss_mb``,
        ``search_build_seconds``, ``search_ms`` (median, p95, max over every query and repeat),
        ``rss_after_search_mb``, ``artefact_mb`` and the KB's code counts.

    Raises:
        ArtefactError: the child process failed (e.g. no KB in ``kb_dir``).
    """
    kb_dir = Path(kb_dir)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.kb",
        "--child",
        "--kb",
        str(kb_dir),
        "--repeats",
        str(repeats),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ArtefactError(f"benchmark of {kb_dir} failed: {last}")
    result: dict[str, Any] = json.loads(proc.stdout)
    result["artefact_mb"] = round(sum(p.stat().st_size for p in kb_dir.iterdir() if p.is_file()) / 2**20, 2)
    return result


def _child(kb_dir: Path, repeats: int) -> dict[str, Any]:
    import resource

    started = time.perf_counter()
    # Imported here, in the child process: the import is part of the load time measured.
    import psutil

    from pipeline.kb.store import KnowledgeBase

    imported = time.perf_counter()
    process = psutil.Process()
    kb = KnowledgeBase.load(kb_dir)
    loaded = time.perf_counter()
    rss = process.memory_info().rss
    peak_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    build_started = time.perf_counter()
    kb.search("warm up")
    build = time.perf_counter() - build_started
    timings: list[float] = []
    for _ in range(repeats):
        for text, system in QUERIES:
            t0 = time.perf_counter()
            kb.search(text, system=system, limit=20)  # type: ignore[arg-type]
            timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    stats = kb.stats()
    return {
        "kb": str(kb_dir),
        "import_seconds": round(imported - started, 3),
        "load_seconds": round(loaded - imported, 3),
        "rss_mb": round(rss / 2**20, 1),
        "peak_rss_after_load_mb": round(peak_after_load / 2**20, 1),
        "search_build_seconds": round(build, 2),
        "rss_after_search_mb": round(process.memory_info().rss / 2**20, 1),
        "search_ms": {
            "queries": len(timings),
            "median": round(statistics.median(timings), 2),
            "p95": round(timings[int(0.95 * (len(timings) - 1))], 2),
            "max": round(timings[-1], 2),
        },
        "counts": {
            k: {"codes": v.get("codes"), "billable": v.get("billable")}
            for k, v in stats.items()
            if k in ("ICD10CM", "HCPCS", "CPT")
        },
        "index_entries": stats.get("ICD10CM_INDEX", {}).get("entries", 0),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line and print the figures as JSON.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0, or 2 when the KB cannot be read.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kb", description=__doc__)
    parser.add_argument("--kb", type=Path, default=default_kb_dir(), help="knowledge-base folder")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="times each query is timed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        result = _child(args.kb, args.repeats) if args.child else run(args.kb, args.repeats)
    except ArtefactError as exc:
        sys.stderr.write(f"codesuggest: error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(result, indent=None if args.child else 2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
