"""The database: migrations agree with the models, URLs, timestamps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.db import Database, head_revision
from service.errors import ServiceConfigError
from service.models import ApiKey, Base

TABLES = {
    "api_keys",
    "audit_log",
    "feedback",
    "feedback_notes",
    "idempotency_records",
    "jobs",
    "job_results",
    "encounters",
    "review_codes",
    "review_events",
    "physician_queries",
    "audit_reviews",
    "ui_sessions",
}


def test_db_migrations_match_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    db.upgrade()
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    assert db.current_revision() == head_revision()


def test_db_upgrade_twice_and_downgrade_round_trip(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    db.upgrade()
    db.upgrade()
    db.downgrade("base")
    assert not TABLES & set(inspect(db.engine).get_table_names())
    db.upgrade()
    assert set(inspect(db.engine).get_table_names()) >= TABLES


def test_db_default_sqlite_path_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = Database("sqlite:///var/codesuggest.sqlite3")
    db.upgrade()
    assert (tmp_path / "var" / "codesuggest.sqlite3").is_file()
    assert db.ping()


def test_db_timestamps_round_trip_as_utc(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 't.sqlite3'}")
    db.upgrade()
    when = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with db.session() as session:
        session.add(ApiKey(id="abc", name="n", role="coder", secret_sha256="0" * 64, created_at=when))
    with db.session() as session:
        row = session.get(ApiKey, "abc")
        assert row is not None
        assert row.created_at == when
        assert row.created_at.tzinfo == dt.UTC


@pytest.mark.parametrize("url", ["not a url", "nosuchdriver://x/y"])
def test_db_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ServiceConfigError):
        Database(url)


def test_db_unreachable_database_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ServiceConfigError):
        Database(f"sqlite:///{blocker / 'sub' / 'x.sqlite3'}").upgrade()
