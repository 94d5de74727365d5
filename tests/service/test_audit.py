"""Audit rows, request ids, log lines, and that note text reaches neither logs nor the database."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from service.models import AuditEntry, FeedbackNote
from tests.service.conftest import Service

SECRET_TEXT = "Patient Zanzibar-Quokka-7731 reports right ankle sprain; diabetes noted."
MARKERS = ("Zanzibar", "Quokka-7731", "ankle sprain; diabetes")


def audit_rows(svc: Service) -> list[AuditEntry]:
    with svc.db.session() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_audit_records_who_called_what_for_which_note(service: Service) -> None:
    response = service.client.post(
        "/v1/suggestions",
        json={"text": SECRET_TEXT, "note_id": "enc-77"},
        headers=service.headers("integration"),
    )
    row = audit_rows(service)[-1]
    key_id = service.keys["integration"].split("_")[1]
    assert (row.key_id, row.method, row.route, row.status) == (
        key_id,
        "POST",
        "/v1/suggestions",
        200,
    )
    assert row.note_id == "enc-77"
    assert row.text_length == len(SECRET_TEXT)
    assert row.n_notes == 1
    assert row.request_id == response.headers["X-Request-ID"]
    assert row.elapsed_ms > 0
    assert row.at.tzinfo is not None


@pytest.mark.parametrize(
    ("method", "path", "headers_role", "status", "route", "keyed"),
    [
        ("GET", "/v1/model", None, 401, "/v1/model", False),
        ("GET", "/v1/codes/S93.401A", "coder", 200, "/v1/codes/{code}", True),
        ("GET", "/v1/codes/Z99.999", "coder", 404, "/v1/codes/{code}", True),
        ("GET", "/v1/codes/1234567", "coder", 422, "/v1/codes/{code}", True),
        # No route matched, so no authentication ran: the row has no key.
        ("GET", "/v1/nothing-here", "coder", 404, "(unmatched)", False),
    ],
)
def test_audit_records_failures_and_route_templates(
    service: Service,
    method: str,
    path: str,
    headers_role: str | None,
    status: int,
    route: str,
    keyed: bool,
) -> None:
    headers = service.headers(headers_role) if headers_role else {}
    assert service.client.request(method, path, headers=headers).status_code == status
    row = audit_rows(service)[-1]
    assert (row.route, row.status) == (route, status)
    assert (row.key_id is not None) == keyed


def test_audit_skips_health_probes(service: Service) -> None:
    service.client.get("/health/live")
    service.client.get("/health/ready")
    assert audit_rows(service) == []


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [("trace-0123456789", True), ("bad id with spaces", False), ("x" * 65, False)],
)
def test_audit_request_id_comes_from_the_caller_when_well_formed(service: Service, incoming: str, kept: bool) -> None:
    response = service.client.get("/health/live", headers={"X-Request-ID": incoming})
    assert (response.headers["X-Request-ID"] == incoming) == kept
    assert len(response.headers["X-Request-ID"]) >= 8


def _exercise(svc: Service) -> None:
    """Every endpoint that receives note text, including a job and an idempotent replay."""
    client, h = svc.client, svc.headers
    assert client.post("/v1/suggestions", json={"text": SECRET_TEXT}, headers=h("integration")).status_code == 200
    replay = h("integration", **{"Idempotency-Key": "phi-test"})
    assert client.post("/v1/suggestions", json={"text": SECRET_TEXT}, headers=replay).status_code == 200
    assert client.post("/v1/suggestions", json={"text": SECRET_TEXT}, headers=replay).status_code == 200
    notes = [{"text": SECRET_TEXT, "note_id": f"n{i}"} for i in range(5)]
    accepted = client.post("/v1/suggestions/batch", json={"notes": notes}, headers=h("integration"))
    assert accepted.status_code == 202
    small = client.post("/v1/suggestions/batch", json={"notes": notes[:2]}, headers=h("integration"))
    assert small.status_code == 200
    feedback = {
        "note_id": "n0",
        "user": "coder-1",
        "text": SECRET_TEXT,
        "decisions": [{"code": "S93.401A", "decision": "accepted", "reason": "documented"}],
    }
    assert client.post("/v1/feedback", json=feedback, headers=h("coder")).status_code == 201
    assert client.post("/v1/suggestions", json={"text": SECRET_TEXT + " BOOM"}, headers=h()).status_code == 500
    assert client.post("/v1/suggestions", json={"text": SECRET_TEXT, "top_k": 0}, headers=h()).status_code == 422
    deadline = time.monotonic() + 20
    url = accepted.json()["status_url"]
    while time.monotonic() < deadline:
        status = client.get(url, headers=h("integration")).json()
        if status["status"] == "succeeded":
            assert MARKERS[2] in str(status["results"])  # the caller does get its evidence
            break
        time.sleep(0.05)
    else:
        raise AssertionError("job did not finish")


def _database_bytes(svc: Service) -> bytes:
    svc.db.dispose()
    path = Path(svc.settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_audit_note_text_never_reaches_logs_or_database(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _exercise(service)
    # A job that is submitted but never fetched keeps its sealed results in the database.
    notes = [{"text": SECRET_TEXT}] * 4
    service.client.post("/v1/suggestions/batch", json={"notes": notes}, headers=service.headers("integration"))
    time.sleep(0.5)
    logged = "\n".join(r.getMessage() + str(r.args) + (r.exc_text or "") for r in caplog.records)
    assert logged, "nothing was logged"
    assert "POST /v1/suggestions" in logged
    stored = _database_bytes(service)
    for marker in MARKERS:
        assert marker not in logged
        assert marker.encode() not in stored
    with service.db.session() as session:
        assert session.scalars(select(FeedbackNote)).all() == []


def test_audit_note_text_is_stored_only_in_feedback_notes_when_enabled(
    service_factory: Any,
) -> None:
    svc = service_factory(feedback_store_text=True)
    _exercise(svc)
    with svc.db.session() as session:
        notes = session.scalars(select(FeedbackNote)).all()
        assert [(n.note_id, n.text) for n in notes] == [("n0", SECRET_TEXT)]
    assert b"Quokka-7731" in _database_bytes(svc)
    # Delete that one row and compact the file: no other copy of the text is left anywhere.
    with svc.db.session() as session:
        session.execute(delete(FeedbackNote))
    with svc.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM")
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"Quokka-7731" not in _database_bytes(svc)
