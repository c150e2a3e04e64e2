"""Plain records the repositories return, and what a stored message body goes through.

Callers never hold ORM objects: no lazy loads after the session is gone, and the message body
is always decoded by the repository (see ``BodyCodec``), so encryption at rest can be added in
one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.domain import Reply
from app.mappers import REPLY_COLUMNS, reply_from_columns
from app.store import models


class BodyCodec(Protocol):
    """How a message body is stored: ``encode`` before writing, ``decode`` after reading."""

    def encode(self, body: str) -> str:
        """The text to store for ``body``."""
        ...

    def decode(self, stored: str) -> str:
        """The original body from its stored text."""
        ...


class PlainBodyCodec:
    """Stores bodies as they are (the default until encryption at rest is configured)."""

    def encode(self, body: str) -> str:
        return body

    def decode(self, stored: str) -> str:
        return stored


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation as stored."""

    id: str
    workspace: str
    user_id: str | None
    channel: str
    variant: str | None
    experiment: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    last_customer_message_at: datetime | None
    metadata: dict[str, Any]

    @classmethod
    def from_row(cls, row: models.Conversation) -> ConversationRecord:
        return cls(
            id=row.id, workspace=row.workspace, user_id=row.user_id, channel=row.channel,
            variant=row.variant, experiment=row.experiment, status=row.status,
            created_at=row.created_at, updated_at=row.updated_at,
            last_customer_message_at=row.last_customer_message_at, metadata=dict(row.meta or {}),
        )


@dataclass(frozen=True)
class MessageRecord:
    """A message as stored, body decoded; ``reply`` (the reply record, its text the body) is
    set for assistant replies only."""

    id: str
    conversation_id: str
    seq: int
    role: str
    body: str
    created_at: datetime
    reply: Reply | None = None
    sentiment: float | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None

    @classmethod
    def from_row(cls, row: models.Message, codec: BodyCodec) -> MessageRecord:
        body = codec.decode(row.body)
        reply = reply_from_columns(body, {c: getattr(row, c) for c in REPLY_COLUMNS})
        return cls(
            id=row.id, conversation_id=row.conversation_id, seq=row.seq, role=row.role,
            body=body, created_at=row.created_at, reply=reply,
            sentiment=row.sentiment, delivered_at=row.delivered_at, read_at=row.read_at,
        )


def ticket_ref(number: int) -> str:
    """The human-friendly form of a ticket number: ``123`` -> ``"T-000123"``."""
    return f"T-{number:06d}"


@dataclass(frozen=True)
class TicketRecord:
    """A ticket as stored; ``ref`` is its human-friendly number (``T-000123``)."""

    id: str
    workspace: str
    number: int
    conversation_id: str | None
    subject: str
    description: str
    priority: str
    status: str
    reason_code: str | None
    assignee: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def ref(self) -> str:
        return ticket_ref(self.number)

    @classmethod
    def from_row(cls, row: models.Ticket) -> TicketRecord:
        return cls(
            id=row.id, workspace=row.workspace, number=row.number,
            conversation_id=row.conversation_id, subject=row.subject,
            description=row.description, priority=row.priority, status=row.status,
            reason_code=row.reason_code, assignee=row.assignee, created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class FeedbackRecord:
    """One piece of customer feedback on a conversation."""

    id: str
    conversation_id: str
    csat: int | None
    resolved: bool | None
    comment: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.Feedback) -> FeedbackRecord:
        return cls(
            id=row.id, conversation_id=row.conversation_id, csat=row.csat,
            resolved=row.resolved, comment=row.comment, created_at=row.created_at,
        )


@dataclass(frozen=True)
class VariantAssignmentRecord:
    """The sticky variant of one user in one experiment."""

    workspace: str
    user_id: str
    experiment: str
    variant: str
    assigned_at: datetime

    @classmethod
    def from_row(cls, row: models.VariantAssignment) -> VariantAssignmentRecord:
        return cls(
            workspace=row.workspace, user_id=row.user_id, experiment=row.experiment,
            variant=row.variant, assigned_at=row.assigned_at,
        )
