"""``codesuggest serve --workers N``: one SO_REUSEPORT socket per worker process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from benchmarks.serving import worker_pids
from service.workers import check_port_free, listening_socket, serve_workers
from tests.service.test_uvicorn import environment, free_port


def test_reuse_port_sockets_share_a_port() -> None:
    port = free_port()
    first = listening_socket("127.0.0.1", port)
    second = listening_socket("127.0.0.1", port)
    with first, second:
        assert first.proto == socket.IPPROTO_TCP
        assert first.getsockname() == second.getsockname()
        # the probe does not use SO_REUSEPORT: a port already served is refused
        with pytest.raises(OSError):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again once both are closed


def test_serve_workers_refuses_a_taken_port(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    with listening_socket("127.0.0.1", port, reuse_port=False):
        assert serve_workers({"app": "service.main:create_app", "host": "127.0.0.1", "port": port}, 2) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_workers_stops_when_a_worker_cannot_start(capsys: pytest.CaptureFixture[str]) -> None:
    config = {"app": "service.no_such_module:create_app", "factory": True, "host": "127.0.0.1", "port": free_port()}
    started = time.monotonic()
    assert serve_workers(config, 2) == 2
    assert time.monotonic() - started < 60
    assert "stopped (exit code" in capsys.readouterr().err


def _listening_inodes(pid: int, port: int) -> set[str]:
    """Inodes of the sockets a process listens on at ``port`` (from /proc)."""
    inodes = set()
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.fd >= 0:
            inodes.add(os.readlink(f"/proc/{pid}/fd/{conn.fd}"))
    return inodes


@pytest.mark.slow
def test_two_workers_each_listen_on_their_own_socket_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = environment(tmp_path, CODESUGGEST_WARMUP="false")
    command = [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port), "--workers", "2", "--insecure-dev"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            workers = [psutil.Process(p) for p in worker_pids(process.pid) if p != process.pid]
            ready = 0
            for _ in range(8):  # new connections each time: the kernel spreads them over the workers
                with contextlib.suppress(httpx.HTTPError):
                    ready += httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
            if ready == 8 and len(workers) == 2 and all(_listening_inodes(w.pid, port) for w in workers):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"two workers not ready in time:\n{log.read_text()}")
        sockets = [_listening_inodes(w.pid, port) for w in workers]
        assert len(sockets[0]) == 1 and len(sockets[1]) == 1 and sockets[0] != sockets[1], sockets
        assert not _listening_inodes(process.pid, port)  # the parent accepts nothing itself
        answer = httpx.post(f"{base}/v1/suggestions", json={"text": "Assessment: essential hypertension."}, timeout=60)
        assert answer.status_code == 200 and any(s["code"] == "I10" for s in answer.json()["suggestions"])
        process.send_signal(signal.SIGINT)
        assert process.wait(90) == 0, log.read_text()
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
