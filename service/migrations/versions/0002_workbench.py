"""The coder's workbench: encounters for review, working code sets, review events, physician
queries, blind audit reviews and signed-in UI sessions.

Revision ID: 0002_workbench
Revises: 0001
Create Date: 2026-12-02

Note text, cached suggestions and query wording are stored sealed (AES-GCM with the deployment's
encounter key, which the database does not hold); timestamps are naive UTC as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_workbench"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("encounters", "ui_sessions", "audit_reviews", "physician_queries", "review_codes", "review_events")


def upgrade() -> None:
    """Create the workbench tables."""
    op.create_table(
        "encounters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("encounter_id", sa.String(length=128), nullable=False),
        sa.Column("setting", sa.String(length=12), nullable=False),
        sa.Column("encounter_date", sa.Date(), nullable=False),
        sa.Column("patient_age", sa.Integer(), nullable=True),
        sa.Column("patient_sex", sa.String(length=10), nullable=True),
        sa.Column("expected_value", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("assigned_to", sa.String(length=200), nullable=True),
        sa.Column("assigned_key_id", sa.String(length=16), nullable=True),
        sa.Column("text_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("text_length", sa.Integer(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=False),
        sa.Column("suggestions_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("model_version", sa.String(length=100), nullable=True),
        sa.Column("coded_at", sa.DateTime(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source_key_id", sa.String(length=16), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("purge_at", sa.DateTime(), nullable=False),
        sa.Column("text_purged_at", sa.DateTime(), nullable=True),
        sa.Column("review_started_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_encounters_encounter_id")),
    )
    op.create_index(op.f("ix_encounters_assigned_to"), "encounters", ["assigned_to"])
    op.create_index(op.f("ix_encounters_encounter_date"), "encounters", ["encounter_date"])
    op.create_index(op.f("ix_encounters_purge_at"), "encounters", ["purge_at"])
    op.create_index(op.f("ix_encounters_setting"), "encounters", ["setting"])
    op.create_index(op.f("ix_encounters_status"), "encounters", ["status"])
    op.create_index(op.f("ix_encounters_submitted_at"), "encounters", ["submitted_at"])
    op.create_table(
        "ui_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ui_sessions")),
    )
    op.create_index(op.f("ix_ui_sessions_expires_at"), "ui_sessions", ["expires_at"])
    op.create_index(op.f("ix_ui_sessions_key_id"), "ui_sessions", ["key_id"])
    op.create_table(
        "audit_reviews",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sample", sa.String(length=64), nullable=False),
        sa.Column("encounter_pk", sa.Integer(), nullable=False),
        sa.Column("auditor", sa.String(length=200), nullable=False),
        sa.Column("auditor_key_id", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_pk"],
            ["encounters.id"],
            name=op.f("fk_audit_reviews_encounter_pk_encounters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_reviews")),
    )
    op.create_index(op.f("ix_audit_reviews_auditor"), "audit_reviews", ["auditor"])
    op.create_index(op.f("ix_audit_reviews_encounter_pk"), "audit_reviews", ["encounter_pk"])
    op.create_index(op.f("ix_audit_reviews_sample"), "audit_reviews", ["sample"])
    op.create_table(
        "physician_queries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("encounter_pk", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("system", sa.String(length=10), nullable=True),
        sa.Column("code", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("addressed_to", sa.String(length=200), nullable=True),
        sa.Column("question_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("answer_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["encounter_pk"],
            ["encounters.id"],
            name=op.f("fk_physician_queries_encounter_pk_encounters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_physician_queries")),
    )
    op.create_index(op.f("ix_physician_queries_encounter_pk"), "physician_queries", ["encounter_pk"])
    op.create_index(op.f("ix_physician_queries_status"), "physician_queries", ["status"])
    op.create_table(
        "review_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("encounter_pk", sa.Integer(), nullable=False),
        sa.Column("audit_pk", sa.Integer(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("replaced_by_system", sa.String(length=10), nullable=True),
        sa.Column("replaced_by", sa.String(length=16), nullable=True),
        sa.Column("replaced_description", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("modifiers", sa.String(length=40), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("pointers", sa.String(length=80), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["audit_pk"], ["audit_reviews.id"], name=op.f("fk_review_codes_audit_pk_audit_reviews"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["encounter_pk"],
            ["encounters.id"],
            name=op.f("fk_review_codes_encounter_pk_encounters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_codes")),
    )
    op.create_index(op.f("ix_review_codes_audit_pk"), "review_codes", ["audit_pk"])
    op.create_index(op.f("ix_review_codes_encounter_pk"), "review_codes", ["encounter_pk"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("encounter_pk", sa.Integer(), nullable=False),
        sa.Column("audit_pk", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("system", sa.String(length=10), nullable=True),
        sa.Column("code", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["audit_pk"], ["audit_reviews.id"], name=op.f("fk_review_events_audit_pk_audit_reviews"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["encounter_pk"],
            ["encounters.id"],
            name=op.f("fk_review_events_encounter_pk_encounters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_events")),
    )
    op.create_index(op.f("ix_review_events_at"), "review_events", ["at"])
    op.create_index(op.f("ix_review_events_encounter_pk"), "review_events", ["encounter_pk"])


def downgrade() -> None:
    """Drop the workbench tables (their indexes go with them), dependants first."""
    for table in reversed(TABLES):
        op.drop_table(table)
