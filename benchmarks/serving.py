"""Service benchmark: latency, throughput and memory of ``codesuggest serve`` on this machine.

``python -m benchmarks.serving --model models/default --corpus build/corpora/codiesp-dev.jsonl``
(``make bench``) starts the real service (1 worker, then 2) on a free localhost port with a
fresh database and API key, sends 2 KB notes taken from the corpus (or ``corpora/samples/*.txt``
when the corpus file is missing) and measures, for each worker count and concurrency level:
latency p50/p95/max, throughput (notes/s), resident memory of each worker process and the CPU
time of the service, of each worker and of the client. It prints a table, checks the targets (p95
under 150 ms at concurrency 1; 40 notes/s with 2 workers) and writes JSON with ``--out``.

Two load generators: the built-in Python client (httpx, one thread and keep-alive connection per
client; it costs about 3 ms of CPU a request on the same cores as the service) and, where the
``wrk`` program is installed (Debian package ``wrk``), wrk with a Lua script that posts the same
notes (about 0.1 ms a request). ``--client auto`` (the default) runs both when wrk is there.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from pipeline.locations import PROJECT_ROOT, default_model_dir
from service.db import Database
from service.security import create_key

logger = logging.getLogger(__name__)

TARGET_P95_MS = 150.0
TARGET_NOTES_PER_S = 40.0
NOTE_CHARS = 2048
WRK_SECONDS = 20

#: wrk script: posts the notes of ``CS_BODIES`` (one JSON body a line) in turn with the key in
#: ``CS_KEY``; prints one ``JSON {...}`` line with the counts and latency percentiles.
WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("CS_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CS_KEY")
request = function()
  i = i + 1
  return wrk.format(nil, "/v1/suggestions", nil, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "duration_us": %d, "errors": %d, "p50_us": %d, "p95_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status + e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency.max))
end
"""


@dataclass
class RunResult:
    """One measured configuration.

    Attributes:
        workers: uvicorn worker processes.
        concurrency: clients sending at once.
        requests: requests sent (after warm-up).
        errors: non-200 answers.
        p50_ms: median latency.
        p95_ms: 95th percentile latency.
        max_ms: slowest request.
        notes_per_s: throughput.
        rss_mb: resident memory of each worker process after the run.
        startup_s: seconds from process start until `/health/ready` answers and every worker is idle.
        service_cpu_ms: CPU time of all service processes per request (where the 2 cores go).
        client_cpu_ms: CPU time of the benchmark client per request (it shares the cores).
        client: the load generator, ``python`` or ``wrk``.
        worker_cpu_ms: CPU time of each worker process per request; shows how evenly the
            connections were spread over the workers.
    """

    workers: int
    concurrency: int
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    notes_per_s: float
    rss_mb: list[float] = field(default_factory=list)
    startup_s: float = 0.0
    service_cpu_ms: float = 0.0
    client_cpu_ms: float = 0.0
    client: str = "python"
    worker_cpu_ms: list[float] = field(default_factory=list)


@dataclass
class Measured:
    """What one load run saw: latencies (ms), requests, failed requests, wall-clock seconds and the
    client's own CPU seconds."""

    p50_ms: float
    p95_ms: float
    max_ms: float
    requests: int
    errors: int
    wall_s: float
    client_cpu_s: float


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by linear interpolation.

    Args:
        values: the sample (non-empty).
        q: the percentile.

    Returns:
        The value.

    Raises:
        ValueError: empty sample or q outside 0-100.
    """
    if not values or not 0 <= q <= 100:
        raise ValueError("percentile of an empty sample, or q outside 0-100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cut_note(text: str, chars: int = NOTE_CHARS) -> str:
    """Cut a note to about ``chars`` characters at a word boundary.

    Args:
        text: the note.
        chars: the target length.

    Returns:
        The note, or its first ``chars`` characters up to the last whitespace.
    """
    if len(text) <= chars:
        return text
    head = text[:chars]
    space = max(head.rfind(" "), head.rfind("\n"))
    return head[:space] if space > chars // 2 else head


def load_notes(corpus: Path | None, samples_dir: Path, chars: int = NOTE_CHARS) -> tuple[list[str], str]:
    """Collect benchmark notes of about ``chars`` characters.

    Short notes are joined with their successors until they reach the size, so that every
    request carries about the same amount of text.

    Args:
        corpus: a corpus JSONL file (``text`` per line), or None.
        samples_dir: the folder of sample ``.txt`` notes used when the corpus is missing.
        chars: target note length.

    Returns:
        The notes and a description of where they came from.

    Raises:
        FileNotFoundError: neither the corpus nor any sample note exists.
    """
    texts: list[str] = []
    if corpus is not None and corpus.is_file():
        with open(corpus, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    texts.append(str(json.loads(line)["text"]))
        source = str(corpus)
    else:
        texts = [p.read_text(encoding="utf-8") for p in sorted(samples_dir.glob("*.txt"))]
        source = f"{samples_dir}/*.txt (corpus {corpus} not found)"
    if not texts:
        raise FileNotFoundError(f"no notes in {source}")
    notes: list[str] = []
    pending = ""
    for text in texts:
        pending = f"{pending}\n\n{text}" if pending else text
        if len(pending) >= chars * 3 // 4:
            notes.append(cut_note(pending, chars))
            pending = ""
    if not notes:
        notes.append(cut_note(pending, chars))
    return notes, source


def free_port() -> int:
    """Return a TCP port free on localhost right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_pids(pid: int) -> list[int]:
    """The worker processes of the service whose main process is ``pid`` (``[pid]`` when it has none).

    Child processes other than workers (multiprocessing's resource tracker) are left out.
    """
    parent = psutil.Process(pid)
    children = [c for c in parent.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
    return [c.pid for c in children] or [pid]


def rss_mb(pids: Sequence[int]) -> list[float]:
    """Resident memory of each process.

    Args:
        pids: process ids.

    Returns:
        MiB per process, in order.
    """
    return [round(psutil.Process(p).memory_info().rss / 2**20, 1) for p in pids]


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by these processes together."""
    total = 0.0
    for p in pids:
        times = psutil.Process(p).cpu_times()
        total += times.user + times.system
    return total


def wait_until_quiet(pid: int, workers: int, deadline: float, quiet_cpu_s: float = 0.05, window_s: float = 1.0) -> None:
    """Wait until all ``workers`` worker processes exist and none is using the CPU.

    ``/health/ready`` answers as soon as one worker has loaded the model; with several workers the
    others may still be loading (about 10 s of one core each), which would be measured as the
    service's own latency. Each worker is idle once its CPU time grows by less than
    ``quiet_cpu_s`` over ``window_s``.

    Args:
        pid: the service's main process.
        workers: the worker processes expected.
        deadline: ``time.monotonic()`` after which to give up.
        quiet_cpu_s: CPU seconds per window below which a worker counts as idle.
        window_s: the window.

    Raises:
        RuntimeError: the workers did not settle before the deadline.
    """
    while time.monotonic() < deadline:
        pids = worker_pids(pid)
        if len(pids) >= workers:
            before = [cpu_seconds([p]) for p in pids]
            time.sleep(window_s)
            after = [cpu_seconds([p]) for p in pids]
            if all(b - a < quiet_cpu_s for a, b in zip(before, after, strict=True)):
                return
        else:
            time.sleep(0.2)
    raise RuntimeError(f"the {workers} service workers did not settle before the deadline")


@contextmanager
def running_service(
    workers: int, env: dict[str, str], cwd: Path, log: Path, timeout: float = 300
) -> Iterator[tuple[str, int, float]]:
    """Start ``codesuggest serve`` and stop it afterwards.

    Args:
        workers: worker processes.
        env: the process environment (``CODESUGGEST_*`` settings).
        cwd: working directory.
        log: file that receives the service's output.
        timeout: seconds to wait for readiness.

    Yields:
        Base URL, process id, startup seconds.
    """
    import httpx

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    started = time.perf_counter()
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited with {process.returncode}; see {log}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready after {timeout:.0f} s; see {log}")
            time.sleep(0.2)
        wait_until_quiet(process.pid, workers, deadline)
        yield base, process.pid, time.perf_counter() - started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def measure(
    base: str, key: str, notes: Sequence[str], requests: int, concurrency: int
) -> tuple[list[float], int, float]:
    """Send ``requests`` notes with ``concurrency`` clients.

    Args:
        base: service URL.
        key: API key.
        notes: notes to cycle through.
        requests: how many to send.
        concurrency: parallel clients (each with its own keep-alive connection).

    Returns:
        Latencies in ms, number of errors, wall-clock seconds.
    """
    import httpx
    from tqdm import tqdm

    local = threading.local()
    headers = {"Authorization": f"Bearer {key}"}

    def one(i: int) -> tuple[float, bool]:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, headers=headers, timeout=120)
        body = {"text": notes[i % len(notes)], "note_id": f"bench-{i}"}
        t0 = time.perf_counter()
        response = client.post("/v1/suggestions", json=body)
        ms = (time.perf_counter() - t0) * 1000
        # Read the whole answer, as a client would, before the next request.
        ok = response.status_code == 200 and bool(response.json()["request_id"])
        return ms, ok

    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(concurrency) as pool,
        tqdm(total=requests, desc=f"c={concurrency}", leave=False, disable=None) as bar,
    ):
        for ms, ok in pool.map(one, range(requests)):
            latencies.append(ms)
            errors += 0 if ok else 1
            bar.update()
    return latencies, errors, time.perf_counter() - started


def measure_python(base: str, key: str, notes: Sequence[str], requests: int, concurrency: int) -> Measured:
    """:func:`measure` with the built-in client, summarised."""
    client_cpu = time.process_time()
    latencies, errors, wall = measure(base, key, notes, requests, concurrency)
    return Measured(
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        max_ms=max(latencies),
        requests=requests,
        errors=errors,
        wall_s=wall,
        client_cpu_s=time.process_time() - client_cpu,
    )


def measure_wrk(base: str, key: str, bodies: Path, concurrency: int, seconds: int, folder: Path) -> Measured:
    """Load the service with wrk for ``seconds`` with ``concurrency`` keep-alive connections.

    Args:
        base: service URL.
        key: API key.
        bodies: request bodies, one JSON document a line.
        concurrency: connections (wrk uses at most 2 threads: the machine has 2 cores).
        seconds: duration.
        folder: where to write the Lua script.

    Returns:
        The run's figures; the client CPU is wrk's own (user + system of the child).

    Raises:
        RuntimeError: wrk failed or printed no result line.
    """
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    env = dict(os.environ, CS_KEY=key, CS_BODIES=str(bodies))
    threads = str(min(2, concurrency))
    command = ["wrk", "-t", threads, "-c", str(concurrency), "-d", f"{seconds}s", "-s", str(script), base]
    before = os.times()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 120)
    after = os.times()
    lines = [line for line in done.stdout.splitlines() if line.startswith("JSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    figures = json.loads(lines[-1][5:])
    if figures["requests"] == 0:
        raise RuntimeError("wrk completed no request")
    return Measured(
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        requests=figures["requests"],
        errors=figures["errors"],
        wall_s=figures["duration_us"] / 1e6,
        client_cpu_s=(after.children_user - before.children_user) + (after.children_system - before.children_system),
    )


def clients_for(choice: str) -> list[str]:
    """The load generators to run for ``--client`` (``auto``: both when wrk is installed)."""
    if choice == "auto":
        return ["python", "wrk"] if shutil.which("wrk") else ["python"]
    if choice == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("--client wrk: the wrk program is not installed (Debian package 'wrk')")
    return [choice]


def run_benchmark(
    model: Path,
    kb: Path | None,
    notes: Sequence[str],
    workers_list: Sequence[int],
    concurrency_list: Sequence[int],
    requests: int,
    warmup: int,
    clients: Sequence[str] = ("python",),
    wrk_seconds: int = WRK_SECONDS,
) -> list[RunResult]:
    """Measure every (workers, concurrency, client) combination against a fresh service.

    Args:
        model: the model folder.
        kb: the knowledge-base folder, or None for the default.
        notes: benchmark notes.
        workers_list: worker counts to try.
        concurrency_list: concurrency levels to try.
        requests: requests per combination (Python client).
        warmup: requests sent first and not measured.
        clients: load generators, ``python`` and/or ``wrk``.
        wrk_seconds: duration of each wrk run.

    Returns:
        One result per combination.
    """
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="codesuggest-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
        db = Database(url)
        db.upgrade()
        with db.session() as session:
            _, key = create_key(session, "service benchmark", "integration")
        db.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODESUGGEST_")}
        env.update(
            CODESUGGEST_DATABASE_URL=url,
            CODESUGGEST_MODEL_DIR=str(model.resolve()),
            CODESUGGEST_LOG_LEVEL="WARNING",
            CODESUGGEST_MAX_TEXT_CHARS=str(max(100_000, max(len(n) for n in notes))),
        )
        if kb is not None:
            env["CODESUGGEST_KB_DIR"] = str(kb.resolve())
        log = folder / "service.log"
        for workers in workers_list:
            with running_service(workers, env, folder, log) as (base, pid, startup):
                logger.info("%d worker(s) ready in %.1f s", workers, startup)
                measure(base, key, notes, max(warmup, 2 * workers), max(concurrency_list))
                workers_pids = worker_pids(pid)
                service_pids = sorted({pid, *workers_pids})
                bodies = folder / "bodies.jsonl"
                bodies.write_text(
                    "".join(json.dumps({"text": n, "note_id": f"bench-{i}"}) + "\n" for i, n in enumerate(notes)),
                    encoding="utf-8",
                )
                for client in clients:
                    for concurrency in concurrency_list:
                        service_cpu = cpu_seconds(service_pids)
                        worker_cpu = [cpu_seconds([p]) for p in workers_pids]
                        if client == "wrk":
                            run = measure_wrk(base, key, bodies, concurrency, wrk_seconds, folder)
                        else:
                            run = measure_python(base, key, notes, requests, concurrency)
                        service_cpu = cpu_seconds(service_pids) - service_cpu
                        worker_cpu = [cpu_seconds([p]) - c for p, c in zip(workers_pids, worker_cpu, strict=True)]
                        results.append(
                            RunResult(
                                workers=workers,
                                concurrency=concurrency,
                                requests=run.requests,
                                errors=run.errors,
                                p50_ms=round(run.p50_ms, 1),
                                p95_ms=round(run.p95_ms, 1),
                                max_ms=round(run.max_ms, 1),
                                notes_per_s=round(run.requests / run.wall_s, 1),
                                rss_mb=rss_mb(workers_pids),
                                startup_s=round(startup, 1),
                                service_cpu_ms=round(1000 * service_cpu / run.requests, 1),
                                client_cpu_ms=round(1000 * run.client_cpu_s / run.requests, 1),
                                client=client,
                                worker_cpu_ms=[round(1000 * c / run.requests, 1) for c in worker_cpu],
                            )
                        )
    return results


def targets(results: Sequence[RunResult]) -> dict[str, dict[str, Any]]:
    """Compare the results with the targets.

    Args:
        results: measured combinations.

    Returns:
        Per target: the target, the value per load generator (``by_client``), and the best of
        them with its client and whether it meets the target (None if not measured).
    """
    by_client: dict[str, dict[str, float]] = {"p95_ms_at_concurrency_1": {}, "notes_per_s_with_2_workers": {}}
    for r in results:
        if r.workers == 1 and r.concurrency == 1:
            by_client["p95_ms_at_concurrency_1"].setdefault(r.client, r.p95_ms)
        if r.workers == 2:
            seen = by_client["notes_per_s_with_2_workers"].get(r.client, 0.0)
            by_client["notes_per_s_with_2_workers"][r.client] = max(seen, r.notes_per_s)
    out: dict[str, dict[str, Any]] = {}
    for name, target, better in (
        ("p95_ms_at_concurrency_1", TARGET_P95_MS, min),
        ("notes_per_s_with_2_workers", TARGET_NOTES_PER_S, max),
    ):
        values = by_client[name]
        client = better(values, key=values.__getitem__) if values else None
        value = values[client] if client else None
        met = None if value is None else (value < target if better is min else value >= target)
        out[name] = {"value": value, "client": client, "target": target, "met": met, "by_client": values}
    return out


def format_table(results: Sequence[RunResult]) -> str:
    """Render the results as a Markdown table.

    Args:
        results: measured combinations.

    Returns:
        The table.
    """
    lines = [
        "| client | workers | concurrency | requests | errors | p50 ms | p95 ms | max ms | notes/s "
        "| RSS per worker MiB | service CPU ms/request | per worker | client CPU ms/request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.client} | {r.workers} | {r.concurrency} | {r.requests} | {r.errors} | {r.p50_ms} "
            f"| {r.p95_ms} | {r.max_ms} | {r.notes_per_s} "
            f"| {', '.join(str(m) for m in r.rss_mb)} | {r.service_cpu_ms} "
            f"| {', '.join(str(m) for m in r.worker_cpu_ms)} | {r.client_cpu_ms} |"
        )
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark from the command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0, or 2 for a bad model folder or option.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model_dir(), help="model folder")
    parser.add_argument("--kb", type=Path, default=None, help="knowledge-base folder (default models/kb)")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus JSONL to take notes from")
    parser.add_argument("--requests", type=int, default=200, help="requests per configuration")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first")
    parser.add_argument("--workers", type=_int_list, default=[1, 2], help="worker counts, e.g. 1,2")
    parser.add_argument("--concurrency", type=_int_list, default=[1, 8], help="client counts, e.g. 1,8")
    parser.add_argument("--note-chars", type=int, default=NOTE_CHARS, help="characters per note")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--client",
        choices=["auto", "python", "wrk"],
        default="auto",
        help="load generator (auto: the Python client, and wrk too when it is installed)",
    )
    parser.add_argument("--wrk-seconds", type=int, default=WRK_SECONDS, help="duration of each wrk run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not (args.model / "manifest.json").is_file():
        sys.stderr.write(f"benchmarks.serving: error: {args.model} is not a model folder (no manifest.json)\n")
        return 2
    if args.requests < 1:
        sys.stderr.write("benchmarks.serving: error: --requests must be at least 1\n")
        return 2
    try:
        clients = clients_for(args.client)
    except RuntimeError as exc:
        sys.stderr.write(f"benchmarks.serving: error: {exc}\n")
        return 2
    if args.wrk_seconds < 1:
        sys.stderr.write("benchmarks.serving: error: --wrk-seconds must be at least 1\n")
        return 2
    notes, source = load_notes(args.corpus, PROJECT_ROOT / "corpora" / "samples", args.note_chars)
    mean_chars = statistics.mean(len(n) for n in notes)
    logger.info("%d notes of %.0f characters on average from %s", len(notes), mean_chars, source)
    results = run_benchmark(
        args.model,
        args.kb,
        notes,
        args.workers,
        args.concurrency,
        args.requests,
        args.warmup,
        clients,
        args.wrk_seconds,
    )
    checked = targets(results)
    sys.stdout.write(format_table(results) + "\n\n")
    for name, target in checked.items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        each = "".join(f"{client} {value}; " for client, value in target["by_client"].items())
        sys.stdout.write(f"{name}: {target['value']} ({each}target {target['target']}): {verdict}\n")
    if args.out is not None:
        document = {
            "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.serving", *(argv or sys.argv[1:])]),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "notes": {"count": len(notes), "mean_chars": round(mean_chars), "source": source},
            "results": [asdict(r) for r in results],
            "targets": checked,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
