"""The service on PostgreSQL: migrations, keys, audit, idempotency, feedback and its export, jobs.

Runs when ``CODESUGGEST_TEST_POSTGRES_URL`` names an empty database the tests may own, e.g.
``postgresql+psycopg://codesuggest:codesuggest@127.0.0.1/codesuggest_test`` (``.ci/run`` starts a
local PostgreSQL server and sets it); skipped otherwise. Every test starts from an empty schema.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from corpora.format import read_corpus
from service.db import Database, head_revision
from service.feedback import export_feedback
from service.models import ApiKey, AuditEntry, Base, FeedbackEntry
from tests.service.conftest import Service
from tests.service.test_db import TABLES
from tests.service.test_jobs import submit, wait_done

# Read at import: the suite's autouse fixture removes CODESUGGEST_* variables from each test.
URL = os.environ.get("CODESUGGEST_TEST_POSTGRES_URL", "")

pytestmark = pytest.mark.skipif(not URL, reason="CODESUGGEST_TEST_POSTGRES_URL is not set")


@pytest.fixture
def empty_db() -> Database:
    """The test database with no tables (a previous run's are dropped)."""
    db = Database(URL)
    db.upgrade()
    db.downgrade("base")
    return db


@pytest.fixture
def pg_service(empty_db: Database, service_factory: Callable[..., Service]) -> Service:
    """An app (fake suggester) on the PostgreSQL database, schema migrated from empty."""
    empty_db.dispose()
    return service_factory(database_url=URL, feedback_store_text=True)


def test_postgres_migrations_match_the_models_and_round_trip(empty_db: Database) -> None:
    assert not TABLES & set(inspect(empty_db.engine).get_table_names())
    empty_db.upgrade()
    with empty_db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(empty_db.engine).get_table_names()) >= TABLES
    assert empty_db.current_revision() == head_revision() and empty_db.ping()
    empty_db.downgrade("base")
    assert not TABLES & set(inspect(empty_db.engine).get_table_names())
    empty_db.dispose()


def test_postgres_timestamps_round_trip_as_utc(empty_db: Database) -> None:
    empty_db.upgrade()
    when = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with empty_db.session() as session:
        session.add(ApiKey(id="abc", name="n", role="coder", secret_sha256="0" * 64, created_at=when))
    with empty_db.session() as session:
        row = session.get(ApiKey, "abc")
        assert row is not None and row.created_at == when and row.created_at.tzinfo == dt.UTC
    empty_db.dispose()


def test_postgres_keys_audit_and_idempotent_replay(pg_service: Service) -> None:
    headers = pg_service.headers("integration", **{"Idempotency-Key": "pg-1"})
    body = {"text": "Right ankle sprain after a fall.", "note_id": "pg-note-1"}
    first = pg_service.client.post("/v1/suggestions", json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = pg_service.client.post("/v1/suggestions", json=body, headers=headers)
    assert again.json()["request_id"] == first.json()["request_id"]
    assert pg_service.client.post("/v1/suggestions", json=body).status_code == 401
    assert pg_service.client.get("/v1/model", headers=pg_service.headers("coder")).status_code == 200
    with pg_service.db.session() as session:
        rows = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    routes = [(r.route, r.status, r.note_id) for r in rows]
    assert ("/v1/suggestions", 200, "pg-note-1") in routes and ("/v1/suggestions", 401, None) in routes
    assert all(r.text_length in (None, len(body["text"])) for r in rows)


def test_postgres_feedback_is_stored_and_exported(pg_service: Service, tmp_path: Path) -> None:
    body: dict[str, Any] = {
        "note_id": "pg-enc-1",
        "user": "coder-1",
        "setting": "outpatient",
        "text": "Right ankle sprain after a fall from a ladder.",
        "decisions": [
            {"code": "s93401a", "decision": "accepted"},
            {"code": "W11.XXXA", "decision": "added"},
            {"code": "99213", "decision": "rejected"},
        ],
    }
    response = pg_service.client.post("/v1/feedback", json=body, headers=pg_service.headers("coder"))
    assert response.status_code == 201, response.text
    with pg_service.db.session() as session:
        stored = [(r.code, r.decision) for r in session.scalars(select(FeedbackEntry).order_by(FeedbackEntry.id))]
    assert stored == [("S93.401A", "accepted"), ("W11.XXXA", "added"), ("99213", "rejected")]
    out = tmp_path / "feedback.jsonl"
    report = export_feedback(pg_service.db, out)
    assert report.written == 1
    (note,) = read_corpus(out)
    assert (note.id, [c.code for c in note.codes]) == ("pg-enc-1", ["S93.401A", "W11.XXXA"])


def test_postgres_background_job_results_are_fetched_once(pg_service: Service) -> None:
    accepted = submit(pg_service, 5)
    done = wait_done(pg_service, accepted["status_url"])
    assert (done["status"], done["n_done"], done["results_state"]) == ("succeeded", 5, "available")
    assert [r["note_id"] for r in done["results"]] == [f"n{i}" for i in range(5)]
    again = pg_service.client.get(accepted["status_url"], headers=pg_service.headers("integration")).json()
    assert (again["status"], again["results_state"], again["results"]) == ("succeeded", "delivered", None)
