"""Database tables of the service (SQLAlchemy 2 declarative models).

The schema is created and changed only by the Alembic migrations in ``service/migrations``;
``tests/service/test_db.py`` checks that the migrations and these models agree.

No table holds note text in the clear except ``feedback_notes``, which is written only when the
deployment sets ``CODESUGGEST_FEEDBACK_STORE_TEXT``. The workbench's encounters keep their note
text, cached suggestions and physician queries sealed with the deployment's encounter key, which
the database does not hold (:mod:`service.encounters`). Stored answers that may quote the note (idempotent
replays, job results) are sealed with keys the database does not hold (see
:mod:`service.sealing`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware UTC, to the microsecond."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as naive UTC and read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Store an aware timestamp as naive UTC; a naive one is refused (its zone is unknown)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Read a stored timestamp back as aware UTC."""
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    """An API key: its public id, role and the sha256 of its secret (never the secret)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEntry(Base):
    """One API call: who, what, which note, outcome and timing; never the note text."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(200))
    status: Mapped[int] = mapped_column(Integer)
    note_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_notes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    elapsed_ms: Mapped[float] = mapped_column(Float)
    replay: Mapped[bool] = mapped_column(Boolean, default=False)


class FeedbackEntry(Base):
    """A coder's decision on one code of one note."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64))
    suggestion_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note_id: Mapped[str] = mapped_column(String(200), index=True)
    user: Mapped[str] = mapped_column(String(200))
    system: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(10))
    replaced_by_system: Mapped[str | None] = mapped_column(String(10), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    setting: Mapped[str | None] = mapped_column(String(12), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)


class FeedbackNote(Base):
    """The text of a note that received feedback; written only when text storage is enabled."""

    __tablename__ = "feedback_notes"

    note_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    setting: Mapped[str | None] = mapped_column(String(12), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IdempotencyRecord(Base):
    """The answer to a POST sent with an ``Idempotency-Key``, kept for replay until it expires."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("key_id", "idem_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(16))
    idem_key: Mapped[str] = mapped_column(String(255))
    body_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    request_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Job(Base):
    """An asynchronous batch job; its notes stay in the memory of the process that runs it."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), index=True)
    n_notes: Mapped[int] = mapped_column(Integer)
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    results_fetched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    results_expired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    model_version: Mapped[str] = mapped_column(String(100))


class JobResult(Base):
    """One sealed chunk of a job's results, deleted once fetched."""

    __tablename__ = "job_results"

    job_id: Mapped[str] = mapped_column(String(24), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


# -- the coder's workbench (service/encounters.py, service/review.py, service/ui/) ----------------
class Encounter(Base):
    """A note waiting for (or through) a coder's review; its text is sealed, never stored plain.

    ``text_sealed`` and ``suggestions_sealed`` (the cached suggestion result, which quotes the
    note) are opened only with the encounter key; both are deleted at ``purge_at``.
    """

    __tablename__ = "encounters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_id: Mapped[str] = mapped_column(String(128), unique=True)
    setting: Mapped[str] = mapped_column(String(12), index=True)
    encounter_date: Mapped[dt.date] = mapped_column(Date, index=True)
    patient_age: Mapped[int | None] = mapped_column(Integer, nullable=True)
    patient_sex: Mapped[str | None] = mapped_column(String(10), nullable=True)
    expected_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(12), index=True)
    assigned_to: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    assigned_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    text_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    text_length: Mapped[int] = mapped_column(Integer)
    key_fingerprint: Mapped[str] = mapped_column(String(16))
    suggestions_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    coded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    purge_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    text_purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    review_started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    submitted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AuditReview(Base):
    """A blind second review of a submitted encounter by another coder (audit mode)."""

    __tablename__ = "audit_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample: Mapped[str] = mapped_column(String(64), index=True)
    encounter_pk: Mapped[int] = mapped_column(Integer, ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    auditor: Mapped[str] = mapped_column(String(200), index=True)
    auditor_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ReviewCode(Base):
    """One line of a working code set: the coder's (``audit_pk`` null) or an auditor's."""

    __tablename__ = "review_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_pk: Mapped[int] = mapped_column(Integer, ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    audit_pk: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("audit_reviews.id", ondelete="CASCADE"), nullable=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(String(10))
    code: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10))
    role: Mapped[str | None] = mapped_column(String(20), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    replaced_by_system: Mapped[str | None] = mapped_column(String(10), nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    replaced_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    modifiers: Mapped[str] = mapped_column(String(40), default="")
    units: Mapped[int] = mapped_column(Integer, default=1)
    pointers: Mapped[str] = mapped_column(String(80), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ReviewEvent(Base):
    """Every workbench action on an encounter, with who and when (never note text)."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_pk: Mapped[int] = mapped_column(Integer, ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    audit_pk: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("audit_reviews.id", ondelete="CASCADE"), nullable=True
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action: Mapped[str] = mapped_column(String(20))
    system: Mapped[str | None] = mapped_column(String(10), nullable=True)
    code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class PhysicianQuery(Base):
    """A query to the physician; its question and answer are sealed like the note they discuss."""

    __tablename__ = "physician_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    encounter_pk: Mapped[int] = mapped_column(Integer, ForeignKey("encounters.id", ondelete="CASCADE"), index=True)
    template: Mapped[str] = mapped_column(String(40))
    system: Mapped[str | None] = mapped_column(String(10), nullable=True)
    code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    addressed_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    question_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    answer_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class UISession(Base):
    """A signed-in workbench session: the sha256 of its cookie token, never the token."""

    __tablename__ = "ui_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), index=True)
    user: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
