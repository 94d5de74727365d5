"""Idempotency-Key on POSTs: replay, conflicts, scope per API key, expiry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from service.idempotency import IN_PROGRESS
from service.models import IdempotencyRecord
from tests.service.conftest import Service

BODY = {"text": "Right ankle sprain, no fracture.", "note_id": "enc-9"}


def post(
    svc: Service,
    body: dict[str, Any],
    key: str | None,
    role: str = "admin",
    path: str = "/v1/suggestions",
) -> Any:
    headers = svc.headers(role, **({"Idempotency-Key": key} if key else {}))
    return svc.client.post(path, json=body, headers=headers)


def test_idempotency_retry_returns_the_stored_answer(service: Service) -> None:
    first = post(service, BODY, "retry-1")
    second = post(service, dict(reversed(list(BODY.items()))), "retry-1")  # same body, other key order
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.json()["request_id"] == first.json()["request_id"]
    assert second.headers["X-Request-ID"] == first.headers["X-Request-ID"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(service.suggester.calls) == 1


def test_idempotency_same_key_other_body_is_422(service: Service) -> None:
    assert post(service, BODY, "k-2").status_code == 200
    response = post(service, {**BODY, "top_k": 3}, "k-2")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "idempotency_key_reused"
    assert "different request body" in error["message"]


def test_idempotency_same_key_on_another_route_is_422(service: Service) -> None:
    assert post(service, BODY, "k-3").status_code == 200
    batch = {"notes": [{"text": BODY["text"]}]}
    assert post(service, batch, "k-3", path="/v1/suggestions/batch").status_code == 422


def test_idempotency_keys_are_scoped_per_api_key(service: Service) -> None:
    first = post(service, BODY, "shared", role="admin")
    second = post(service, BODY, "shared", role="integration")
    assert first.status_code == second.status_code == 200
    assert first.json()["request_id"] != second.json()["request_id"]
    assert len(service.suggester.calls) == 2


def test_idempotency_expired_key_runs_again(service: Service) -> None:
    first = post(service, BODY, "old")
    with service.db.session() as session:
        session.execute(update(IdempotencyRecord).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    second = post(service, BODY, "old")
    assert second.status_code == 200
    assert second.json()["request_id"] != first.json()["request_id"]
    assert len(service.suggester.calls) == 2


def test_idempotency_ttl_comes_from_the_settings(service_factory: Any) -> None:
    svc = service_factory(idempotency_ttl_seconds=60)
    post(svc, BODY, "ttl")
    with svc.db.session() as session:
        record = session.scalars(select(IdempotencyRecord)).one()
        assert dt.timedelta(seconds=59) < record.expires_at - record.created_at <= dt.timedelta(seconds=60)


def test_idempotency_request_still_running_is_409(service: Service) -> None:
    post(service, BODY, "busy")
    with service.db.session() as session:
        session.execute(update(IdempotencyRecord).values(state=IN_PROGRESS, response=None, status_code=None))
    response = post(service, BODY, "busy")
    assert response.status_code == 409
    assert "still being processed" in response.json()["error"]["message"]


def test_idempotency_failed_request_releases_its_key(service: Service) -> None:
    assert post(service, {"text": "BOOM"}, "fix-me").status_code == 500
    with service.db.session() as session:
        assert session.scalars(select(IdempotencyRecord)).all() == []
    assert post(service, {"text": "BOOM ankle"}, "fix-me").status_code == 500


def test_idempotency_job_submission_replays_the_same_job(service: Service) -> None:
    batch = {"notes": [{"text": f"ankle {i}"} for i in range(5)]}
    first = post(service, batch, "job-1", path="/v1/suggestions/batch")
    second = post(service, batch, "job-1", path="/v1/suggestions/batch")
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert second.headers["Location"] == first.headers["Location"]


def test_idempotency_feedback_is_stored_once(service: Service) -> None:
    body = {
        "note_id": "n1",
        "user": "coder-1",
        "decisions": [{"code": "S93.401A", "decision": "accepted"}],
    }
    first = post(service, body, "fb", role="coder", path="/v1/feedback")
    second = post(service, body, "fb", role="coder", path="/v1/feedback")
    assert first.status_code == second.status_code == 201
    from service.models import FeedbackEntry

    with service.db.session() as session:
        assert len(session.scalars(select(FeedbackEntry)).all()) == 1


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\tkey"])
def test_idempotency_bad_key_header_is_422(service: Service, key: str) -> None:
    response = post(service, BODY, key)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "Idempotency-Key"


def test_idempotency_stored_answer_is_sealed(service: Service) -> None:
    post(service, {"text": "ankle QUOKKA-EVIDENCE-TOKEN"}, "sealed")
    with service.db.session() as session:
        record = session.scalars(select(IdempotencyRecord)).one()
        assert record.response is not None
        assert b"QUOKKA" not in record.response
        assert b"S93.401A" not in record.response
