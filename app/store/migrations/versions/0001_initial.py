"""Initial schema: conversations, messages, tickets, feedback, variant assignments.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01

Types are spelled out here (not imported from the models) so this file keeps describing the
schema it created even after the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_TICKET_WHERE = "status IN ('open', 'pending')"


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(JSONB(), "postgresql"), nullable=nullable)


def _id() -> sa.Column[object]:
    return sa.Column("id", sa.String(32), nullable=False)


def upgrade() -> None:
    op.create_table(
        "conversations",
        _id(),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("experiment", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("last_customer_message_at", nullable=True),
        _json("metadata", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_index("ix_conversations_created_at", "conversations", ["created_at"])
    op.create_index("ix_conversations_variant", "conversations", ["variant"])
    op.create_index(
        "ix_conversations_workspace_user_id_created_at", "conversations",
        ["workspace", "user_id", "created_at"],
    )
    op.create_index("ix_conversations_workspace_status", "conversations", ["workspace", "status"])

    op.create_table(
        "messages",
        _id(),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        _json("cited_article_ids"),
        _json("retrieval_scores"),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("sentiment", sa.Float(), nullable=True),
        _ts("delivered_at", nullable=True),
        _ts("read_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_messages_conversation_id_conversations", ondelete="CASCADE",
        ),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_id_seq"),
    )
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_messages_variant", "messages", ["variant"])

    op.create_table(
        "tickets",
        _id(),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=True),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("assignee", sa.String(255), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tickets"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_tickets_conversation_id_conversations", ondelete="SET NULL",
        ),
        sa.UniqueConstraint("workspace", "number", name="uq_tickets_workspace_number"),
    )
    op.create_index("ix_tickets_conversation_id", "tickets", ["conversation_id"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_index("ix_tickets_workspace_status", "tickets", ["workspace", "status"])
    op.create_index(
        "uq_tickets_open_conversation", "tickets", ["conversation_id"], unique=True,
        sqlite_where=sa.text(OPEN_TICKET_WHERE), postgresql_where=sa.text(OPEN_TICKET_WHERE),
    )

    op.create_table(
        "feedback",
        _id(),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_feedback_conversation_id_conversations", ondelete="CASCADE",
        ),
    )
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])

    op.create_table(
        "variant_assignments",
        _id(),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("experiment", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(64), nullable=False),
        _ts("assigned_at"),
        sa.PrimaryKeyConstraint("id", name="pk_variant_assignments"),
        sa.UniqueConstraint(
            "workspace", "user_id", "experiment",
            name="uq_variant_assignments_workspace_user_id_experiment",
        ),
    )
    op.create_index(
        "ix_variant_assignments_experiment_variant", "variant_assignments",
        ["experiment", "variant"],
    )
    op.create_index("ix_variant_assignments_assigned_at", "variant_assignments", ["assigned_at"])


def downgrade() -> None:
    for table in ("variant_assignments", "feedback", "tickets", "messages", "conversations"):
        op.drop_table(table)
