"""Messages keep the whole reply record: citations with titles and links, priority, fallback,
detail, the query retrieved with, the customer's sentiment and cache token usage.

Revision ID: 0002_reply_record
Revises: 0001_initial
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002_reply_record"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("priority", sa.String(16)),
    ("citations", sa.JSON().with_variant(JSONB(), "postgresql")),
    ("fallback_from", sa.String(64)),
    ("detail", sa.Text()),
    ("query", sa.Text()),
    ("reply_sentiment", sa.Float()),
    ("cache_read_tokens", sa.Integer()),
    ("cache_creation_tokens", sa.Integer()),
)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
