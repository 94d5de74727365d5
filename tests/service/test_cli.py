"""The service commands: keys, db upgrade, corpus export-feedback, serve's startup checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli.main import main
from service.db import Database, head_revision
from service.security import authenticate
from tests.service.conftest import Service


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def test_cli_keys_create_prints_the_secret_once_and_it_works(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--name", "EHR bridge", "--role", "integration", "--db", db_url]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("csk_")
    assert "cannot be shown again" in err
    db = Database(db_url)
    with db.session() as session:
        assert authenticate(session, token).role == "integration"
    assert main(["keys", "list", "--db", db_url]) == 0
    listing, _ = capsys.readouterr()
    assert "EHR bridge" in listing and "integration" in listing
    assert token.split("_")[2] not in listing


def test_cli_keys_list_json_and_revoke(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keys", "create", "--name", "coder tool", "--role", "coder", "--json", "--db", db_url])
    created = json.loads(capsys.readouterr().out)
    assert created["role"] == "coder" and created["key"].startswith("csk_")
    assert main(["keys", "revoke", created["id"], "--db", db_url]) == 0
    capsys.readouterr()
    main(["keys", "list", "--json", "--db", db_url])
    listed = json.loads(capsys.readouterr().out)
    assert [(k["id"], k["revoked_at"] is not None) for k in listed] == [(created["id"], True)]
    assert "key" not in listed[0]
    main(["keys", "list", "--json", "--active", "--db", db_url])
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keys", "revoke", "ffffffffffff"], "no API key with id"),
        (["keys", "create", "--name", "  ", "--role", "coder"], "1 to 200 characters"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(
    db_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main([*argv, "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_database_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", "nosuchdriver://x"]) == 2
    assert "database URL" in capsys.readouterr().err


def test_cli_db_upgrade_reports_the_revision(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", db_url]) == 0
    assert f"revision {head_revision()}" in capsys.readouterr().err


def test_cli_database_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODESUGGEST_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    assert main(["keys", "list"]) == 0
    assert (tmp_path / "env.sqlite3").is_file()
    assert not (tmp_path / "var").exists()


def test_cli_export_feedback_writes_the_corpus(
    service_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svc: Service = service_factory(feedback_store_text=True)
    body = {
        "note_id": "enc-1",
        "user": "coder-1",
        "text": "Right ankle sprain.",
        "decisions": [{"code": "S93.401A", "decision": "accepted"}],
    }
    assert svc.client.post("/v1/feedback", json=body, headers=svc.headers("coder")).status_code == 201
    body = {
        "note_id": "enc-2",
        "user": "coder-1",
        "decisions": [{"code": "E11.9", "decision": "added"}],
    }
    assert svc.client.post("/v1/feedback", json=body, headers=svc.headers("coder")).status_code == 201
    out = tmp_path / "feedback.jsonl"
    argv = ["corpus", "export-feedback", "--out", str(out), "--db", svc.settings.database_url]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "wrote 1 notes" in err
    assert "skipped 1 notes whose text was not stored" in err
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["id"] == "enc-1"
    assert lines[0]["codes"] == [{"system": "ICD10CM", "code": "S93.401A"}]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["skipped"] == {"no_text": 1, "no_codes": 0}


def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CODESUGGEST_")}
    environment.update(env)
    environment["CODESUGGEST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", "0", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_serve_without_a_model_exits_with_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _serve(tmp_path, {"CODESUGGEST_MODEL_DIR": str(empty)}, "--workers", "2")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("codesuggest: error:") and "manifest.json" in lines[0]


def test_cli_serve_bad_setting_exits_with_one_line(tmp_path: Path) -> None:
    done = _serve(tmp_path, {"CODESUGGEST_MAX_TEXT_CHARS": "lots"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "CODESUGGEST_MAX_TEXT_CHARS" in done.stderr
