"""SQLAlchemy table models: conversations, messages, tickets, feedback, variant assignments.

Only the repositories use these; callers get plain records (``app.store.records``). Enum-like
columns are strings checked in Python (``app.store.choices``) so the schema is the same on SQLite
and PostgreSQL. Timestamps are timezone-aware UTC on the Python side on both databases.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates
from sqlalchemy.types import TypeDecorator

from app.errors import ValidationError
from app.store.choices import (
    CHANNELS,
    CONVERSATION_STATUSES,
    DEFAULT_WORKSPACE,
    MESSAGE_ROLES,
    REPLY_DECISIONS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    check_choice,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# The partial index that keeps a conversation to one open ticket; shared with the migration.
OPEN_TICKET_WHERE = "status IN ('open', 'pending')"


def new_id() -> str:
    """A fresh primary key: a uuid4 as 32 hex characters."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    Naive datetimes given to it are taken as UTC. SQLite has no time zones, so it stores naive
    UTC (its fixed-width text format then sorts and compares correctly); PostgreSQL stores
    ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so constraint names are stable for Alembic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Conversation(Base):
    """One customer conversation on one channel; ``variant`` is the A/B arm that served it."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index(None, "created_at"),
        Index(None, "variant"),
        Index(None, "workspace", "user_id", "created_at"),
        Index(None, "workspace", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    user_id: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(16), default="web")
    variant: Mapped[str | None] = mapped_column(String(64))
    experiment: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_customer_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # ``metadata`` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)

    @validates("channel")
    def _check_channel(self, key: str, value: str) -> str:
        return check_choice(key, value, CHANNELS)

    @validates("status")
    def _check_status(self, key: str, value: str) -> str:
        return check_choice(key, value, CONVERSATION_STATUSES)


class Message(Base):
    """One turn; assistant replies carry the decision, citations, scores and usage."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),  # also the conversation_id index
        Index(None, "created_at"),
        Index(None, "variant"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    # Possibly encrypted at rest one day: read and write it only through the repository's codec.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decision: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    cited_article_ids: Mapped[list[str] | None] = mapped_column(JSONType)
    retrieval_scores: Mapped[list[Any] | dict[str, Any] | None] = mapped_column(JSONType)
    confidence: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    variant: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(16))
    citations: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType)
    fallback_from: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    query: Mapped[str | None] = mapped_column(Text)
    reply_sentiment: Mapped[float | None] = mapped_column(Float)
    cache_read_tokens: Mapped[int | None] = mapped_column(Integer)
    cache_creation_tokens: Mapped[int | None] = mapped_column(Integer)
    # the customer message's own sentiment (customer messages only)
    sentiment: Mapped[float | None] = mapped_column(Float)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @validates("role")
    def _check_role(self, key: str, value: str) -> str:
        return check_choice(key, value, MESSAGE_ROLES)

    @validates("decision")
    def _check_decision(self, key: str, value: str | None) -> str | None:
        return None if value is None else check_choice(key, value, REPLY_DECISIONS)


class Ticket(Base):
    """A hand-off to humans; ``number`` is the human-friendly id (shown as ``T-000123``)."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("workspace", "number"),
        Index(None, "conversation_id"),
        Index(None, "created_at"),
        Index(None, "workspace", "status"),
        Index(
            "uq_tickets_open_conversation", "conversation_id", unique=True,
            sqlite_where=text(OPEN_TICKET_WHERE), postgresql_where=text(OPEN_TICKET_WHERE),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    number: Mapped[int] = mapped_column(Integer)
    conversation_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="SET NULL")
    )
    subject: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="open")
    reason_code: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @validates("priority")
    def _check_priority(self, key: str, value: str) -> str:
        return check_choice(key, value, TICKET_PRIORITIES)

    @validates("status")
    def _check_status(self, key: str, value: str) -> str:
        return check_choice(key, value, TICKET_STATUSES)


class Feedback(Base):
    """A customer's verdict on a conversation: CSAT 1-5 and/or "was it resolved"."""

    __tablename__ = "feedback"
    __table_args__ = (Index(None, "conversation_id"), Index(None, "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    csat: Mapped[int | None] = mapped_column(Integer)
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @validates("csat")
    def _check_csat(self, key: str, value: int | None) -> int | None:
        if value is not None and (isinstance(value, bool) or value not in range(1, 6)):
            raise ValidationError(f"csat must be an integer from 1 to 5; got {value!r}")
        return value


class VariantAssignment(Base):
    """The sticky A/B arm a user got in one experiment (one row per workspace/user/experiment)."""

    __tablename__ = "variant_assignments"
    __table_args__ = (
        UniqueConstraint("workspace", "user_id", "experiment"),
        Index(None, "experiment", "variant"),
        Index(None, "assigned_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace: Mapped[str] = mapped_column(String(64), default=DEFAULT_WORKSPACE)
    user_id: Mapped[str] = mapped_column(String(255))
    experiment: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
