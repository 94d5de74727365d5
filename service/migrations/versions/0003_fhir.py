"""CDS Hooks: JWT ids already accepted (replay protection) and the cards sent (for feedback).

Revision ID: 0003_fhir
Revises: 0002_workbench
Create Date: 2026-12-02

Both tables hold ids, codes and expiry times only, never note text; rows are deleted once they
expire (the service's housekeeper).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_fhir"
down_revision: str | None = "0002_workbench"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the CDS Hooks tables."""
    op.create_table(
        "cds_token_ids",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_token_ids")),
    )
    op.create_index(op.f("ix_cds_token_ids_expires_at"), "cds_token_ids", ["expires_at"])
    op.create_table(
        "cds_cards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("hook_instance", sa.String(length=100), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("note_id", sa.String(length=200), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("setting", sa.String(length=12), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("suggestions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cds_cards")),
    )
    op.create_index(op.f("ix_cds_cards_expires_at"), "cds_cards", ["expires_at"])


def downgrade() -> None:
    """Drop the CDS Hooks tables."""
    op.drop_index(op.f("ix_cds_cards_expires_at"), table_name="cds_cards")
    op.drop_table("cds_cards")
    op.drop_index(op.f("ix_cds_token_ids_expires_at"), table_name="cds_token_ids")
    op.drop_table("cds_token_ids")
