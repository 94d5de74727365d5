"""The service as a real process: ``codesuggest serve`` under uvicorn on a free localhost port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pipeline.locations import PROJECT_ROOT, default_model_dir

pytestmark = pytest.mark.slow

NOTE = (PROJECT_ROOT / "corpora" / "samples" / "ankle_sprain.txt").read_text(encoding="utf-8")
MARKER = "Quokka-Zanzibar-5512"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODESUGGEST_")}
    env["CODESUGGEST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    env.update(extra)
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    key: str
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("uvicorn")
    env = environment(tmp_path)
    db = env["CODESUGGEST_DATABASE_URL"]
    key_file = tmp_path / "key.txt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "keys",
            "create",
            "--name",
            "test",
            "--role",
            "admin",
            "--db",
            db,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    key_file.write_text(done.stdout)
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    else:
        process.kill()
        raise AssertionError(f"server not ready in time:\n{log.read_text()}")
    yield Server(process, base, done.stdout.strip(), log)
    if process.poll() is None:
        process.kill()
        process.wait(30)


def test_uvicorn_serves_suggestions_over_http(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.key}", "Idempotency-Key": "uvicorn-1"}
    body = {"text": f"{NOTE}\nPatient code name {MARKER}.", "note_id": "proc-1"}
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        first = client.post("/v1/suggestions", json=body, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["suggestions"]
        assert first.headers["X-Model-Version"] == first.json()["model_version"]
        again = client.post("/v1/suggestions", json=body, headers=headers)
        assert again.json()["request_id"] == first.json()["request_id"]
        assert client.post("/v1/suggestions", json={"text": " "}, headers=headers).status_code == 422
        assert client.get("/v1/model").status_code == 401
        code = client.get("/v1/codes/S93.401A", headers={"X-API-Key": server.key})
        assert code.status_code == 200 and code.json()["billable"] is True


def test_uvicorn_stops_cleanly_and_logged_no_note_text(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(60) == 0
    log = server.log.read_text()
    assert "POST /v1/suggestions -> 200" in log
    assert MARKER not in log
    assert "slipped on a wet kitchen floor" not in log


def test_uvicorn_tampered_model_stops_startup_with_one_line(tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    victim = max(
        (p for p in copy.rglob("*") if p.is_file() and p.name != "manifest.json"),
        key=lambda p: p.stat().st_size,
    )
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", str(free_port())],
        env=environment(tmp_path, CODESUGGEST_MODEL_DIR=str(copy)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "does not match its manifest hash" in lines[0]
