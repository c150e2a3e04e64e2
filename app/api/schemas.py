"""Public request/response models (separate from the store's records)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.responder.responder import Reply
from app.store import ConversationRecord, MessageRecord, TicketRecord

ChannelName = Literal["web", "sms", "email", "whatsapp", "facebook", "instagram", "api", "voice"]


class CitationOut(BaseModel):
    id: str
    title: str
    url: str


class ReplyOut(BaseModel):
    """The assistant's reply to one customer message."""

    message: str
    decision: Literal["answer", "clarify", "escalate"]
    reason: str | None
    citations: list[CitationOut]
    confidence: float
    variant: str
    provider: str
    model: str
    latency_ms: float
    fallback_from: str | None = None

    @classmethod
    def of(cls, reply: Reply) -> ReplyOut:
        return cls(message=reply.text, decision=reply.decision, reason=reply.reason,
                   citations=[CitationOut(id=c.id, title=c.title, url=c.url)
                              for c in reply.citations],
                   confidence=round(reply.confidence, 4), variant=reply.variant,
                   provider=reply.provider, model=reply.model,
                   latency_ms=round(reply.latency_ms, 2), fallback_from=reply.fallback_from)


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
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

    @classmethod
    def of(cls, t: TicketRecord) -> TicketOut:
        return cls.model_validate(t)


class MessageOut(BaseModel):
    id: str
    seq: int
    role: str
    body: str
    created_at: datetime
    decision: str | None = None
    reason: str | None = None
    cited_article_ids: list[str] = Field(default_factory=list)
    confidence: float | None = None
    variant: str | None = None
    sentiment: float | None = None
    read_at: datetime | None = None

    @classmethod
    def of(cls, m: MessageRecord) -> MessageOut:
        r = m.reply
        return cls(id=m.id, seq=m.seq, role=m.role, body=m.body, created_at=m.created_at,
                   decision=r.decision if r else None, reason=r.reason if r else None,
                   cited_article_ids=list(r.cited_article_ids) if r else [],
                   confidence=r.confidence if r else None, variant=r.variant if r else None,
                   sentiment=m.sentiment, read_at=m.read_at)


class ConversationOut(BaseModel):
    id: str
    user_id: str | None
    channel: str
    variant: str | None
    status: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, c: ConversationRecord) -> ConversationOut:
        return cls(id=c.id, user_id=c.user_id, channel=c.channel, variant=c.variant,
                   status=c.status, created_at=c.created_at, updated_at=c.updated_at,
                   metadata=c.metadata)
