"""Public request/response models (separate from the store's records)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.domain import Channel, ConversationStatus, Decision, Priority, Role, TicketStatus
from app.mappers import CitationOut, ReplyOut, reply_to_api
from app.store import ConversationRecord, MessageRecord, TicketRecord

__all__ = ["CitationOut", "ConversationOut", "MessageOut", "ReplyOut", "TicketOut",
           "reply_to_api"]


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: int
    conversation_id: str | None
    subject: str
    description: str
    priority: Priority
    status: TicketStatus
    reason_code: str | None
    assignee: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: TicketRecord) -> TicketOut:
        return cls.model_validate(t)


class MessageOut(BaseModel):
    id: str
    seq: int
    role: Role
    body: str
    created_at: datetime
    decision: Decision | None = None
    reason: str | None = None
    cited_article_ids: list[str] = Field(default_factory=list)
    confidence: float | None = None
    variant: str | None = None
    sentiment: float | None = None
    read_at: datetime | None = None

    @classmethod
    def of(cls, m: MessageRecord) -> MessageOut:
        r = m.reply
        return cls(id=m.id, seq=m.seq, role=Role(m.role), body=m.body, created_at=m.created_at,
                   decision=Decision(r.decision) if r else None, reason=r.reason if r else None,
                   cited_article_ids=list(r.cited_article_ids) if r else [],
                   confidence=r.confidence if r else None,
                   variant=(r.variant or None) if r else None,
                   sentiment=m.sentiment, read_at=m.read_at)


class ConversationOut(BaseModel):
    id: str
    user_id: str | None
    channel: Channel
    variant: str | None
    status: ConversationStatus
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, c: ConversationRecord) -> ConversationOut:
        return cls(id=c.id, user_id=c.user_id, channel=Channel(c.channel), variant=c.variant,
                   status=ConversationStatus(c.status), created_at=c.created_at,
                   updated_at=c.updated_at, metadata=c.metadata)
