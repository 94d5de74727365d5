"""The service benchmark's helpers, and one tiny real run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.serving import (
    RunResult,
    clients_for,
    cut_note,
    format_table,
    load_notes,
    main,
    percentile,
    targets,
    wait_until_quiet,
)
from pipeline.locations import default_model_dir


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0),
        ([3.0, 1.0, 2.0], 0, 1.0),
    ],
)
def test_bench_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], 101)])
def test_bench_percentile_rejects_bad_input(values: list[float], q: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, q)


@pytest.mark.parametrize(
    ("text", "chars", "expected"),
    [("short", 10, "short"), ("one two three four", 10, "one two"), ("x" * 30, 10, "x" * 10)],
)
def test_bench_cut_note(text: str, chars: int, expected: str) -> None:
    assert cut_note(text, chars) == expected


def test_bench_load_notes_joins_short_notes(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    lines = [{"id": str(i), "text": f"note {i} " + "word " * 30, "codes": []} for i in range(10)]
    corpus.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    notes, source = load_notes(corpus, tmp_path, chars=400)
    assert source == str(corpus)
    assert all(300 <= len(n) <= 400 for n in notes[:-1])
    assert notes[0].startswith("note 0") and "note 1" in notes[0]


def test_bench_load_notes_falls_back_to_samples(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "a.txt").write_text("ankle " * 500)
    notes, source = load_notes(tmp_path / "missing.jsonl", samples, chars=2048)
    assert "not found" in source
    assert len(notes) == 1 and len(notes[0]) <= 2048
    with pytest.raises(FileNotFoundError):
        load_notes(None, tmp_path / "nothing-here")


def test_bench_targets_and_table() -> None:
    results = [
        RunResult(1, 1, 10, 0, 40.0, 90.0, 120.0, 20.0, [500.0], 9.0),
        RunResult(2, 8, 10, 0, 100.0, 200.0, 250.0, 38.0, [480.0, 490.0], 9.0, 46.0, 3.0, "python", [23.0, 23.0]),
        RunResult(2, 8, 800, 0, 180.0, 300.0, 400.0, 41.5, [480.0, 490.0], 9.0, 46.0, 0.1, "wrk", [40.0, 6.0]),
    ]
    checked = targets(results)
    assert checked["p95_ms_at_concurrency_1"] == {
        "value": 90.0,
        "client": "python",
        "target": 150.0,
        "met": True,
        "by_client": {"python": 90.0},
    }
    throughput = checked["notes_per_s_with_2_workers"]
    assert throughput["by_client"] == {"python": 38.0, "wrk": 41.5}
    assert (throughput["value"], throughput["client"], throughput["met"]) == (41.5, "wrk", True)
    table = format_table(results)
    assert (
        "| python | 2 | 8 | 10 | 0 | 100.0 | 200.0 | 250.0 | 38.0 | 480.0, 490.0 | 46.0 | 23.0, 23.0 | 3.0 |" in table
    )
    assert "| wrk | 2 | 8 | 800 |" in table
    assert targets([])["p95_ms_at_concurrency_1"]["met"] is None
    slow = targets([RunResult(2, 8, 10, 0, 1.0, 1.0, 1.0, 12.0, client="python")])
    assert slow["notes_per_s_with_2_workers"]["met"] is False


def test_bench_client_choice() -> None:
    assert clients_for("python") == ["python"]
    if shutil.which("wrk"):
        assert clients_for("auto") == ["python", "wrk"] and clients_for("wrk") == ["wrk"]
    else:
        assert clients_for("auto") == ["python"]
        with pytest.raises(RuntimeError, match="not installed"):
            clients_for("wrk")


def test_bench_refuses_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


BUSY_THEN_IDLE = (
    "import time\nt = time.process_time()\nwhile time.process_time() - t < {busy}:\n    pass\ntime.sleep(60)"
)


def test_bench_waits_for_a_busy_worker_to_settle() -> None:
    # a stand-in for a worker still loading its model: busy for 1.5 s of CPU, then idle
    worker = subprocess.Popen([sys.executable, "-c", BUSY_THEN_IDLE.format(busy=1.5)])
    try:
        started = time.monotonic()
        wait_until_quiet(worker.pid, 1, time.monotonic() + 30, window_s=0.5)
        assert time.monotonic() - started >= 1.0
    finally:
        worker.kill()
        worker.wait()


def test_bench_gives_up_on_a_worker_that_never_settles() -> None:
    worker = subprocess.Popen([sys.executable, "-c", BUSY_THEN_IDLE.format(busy=60)])
    try:
        with pytest.raises(RuntimeError, match="did not settle"):
            wait_until_quiet(worker.pid, 1, time.monotonic() + 2, window_s=0.5)
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.slow
def test_bench_tiny_real_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [
        "--model",
        str(default_model_dir()),
        "--workers",
        "1",
        "--concurrency",
        "1",
        "--requests",
        "3",
        "--warmup",
        "1",
        "--out",
        str(out),
        "--client",
        "python",
    ]
    assert main(argv) == 0
    document = json.loads(out.read_text())
    (result,) = document["results"]
    assert result["errors"] == 0 and result["requests"] == 3
    assert result["rss_mb"][0] > 50
    assert document["notes"]["count"] >= 1
    # coding a note costs the service CPU time; the client's share is measured apart from it
    assert result["service_cpu_ms"] > 5 and result["client_cpu_ms"] > 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="the wrk program is not installed (Debian package 'wrk')")
def test_bench_tiny_real_run_with_wrk(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["--model", str(default_model_dir()), "--workers", "1", "--concurrency", "1", "--warmup", "1"]
    assert main([*argv, "--client", "wrk", "--wrk-seconds", "2", "--out", str(out)]) == 0
    (result,) = json.loads(out.read_text())["results"]
    assert result["client"] == "wrk" and result["errors"] == 0 and result["requests"] >= 2
    assert result["p50_ms"] > 1 and result["service_cpu_ms"] > 5 and len(result["worker_cpu_ms"]) == 1
