"""Conversations: start, post messages (answered), read, feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from app.api.deps import ConversationsDep, StoreDep
from app.api.schemas import ConversationOut, MessageOut, ReplyOut, TicketOut, reply_to_api
from app.domain import Channel

router = APIRouter(prefix="/api/v1/conversations", tags=["conversations"])

MessageText = Annotated[str, Field(min_length=1, description="The customer's message.")]


class ConversationCreate(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    channel: Channel = Channel.WEB
    initial_message: MessageText | None = None
    workspace: str | None = Field(default=None, max_length=100)
    variant: str | None = Field(default=None, description="Force a variant (testing).")
    metadata: dict[str, Any] = Field(default_factory=dict)


class MessageCreate(BaseModel):
    message: MessageText


class TurnOut(BaseModel):
    conversation: ConversationOut
    reply: ReplyOut | None = None
    ticket: TicketOut | None = None


class ConversationDetail(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    tickets: list[TicketOut]


class FeedbackCreate(BaseModel):
    csat: int | None = Field(default=None, ge=1, le=5, description="Satisfaction 1–5.")
    resolved: bool | None = Field(default=None, description="Did this solve the problem?")
    comment: str | None = Field(default=None, max_length=4000)


class FeedbackOut(BaseModel):
    id: str
    conversation_id: str
    csat: int | None
    resolved: bool | None


@router.post("", response_model=TurnOut, status_code=status.HTTP_201_CREATED)
def create_conversation(body: ConversationCreate, service: ConversationsDep) -> TurnOut:
    """Start a conversation; an ``initial_message`` is answered straight away."""
    conv, turn = service.start(body.user_id, body.channel, body.initial_message,
                               body.workspace, body.variant, body.metadata)
    if turn is None:
        return TurnOut(conversation=ConversationOut.of(conv))
    return TurnOut(conversation=ConversationOut.of(turn.conversation),
                   reply=reply_to_api(turn.reply),
                   ticket=TicketOut.of(turn.ticket) if turn.ticket else None)


@router.post("/{conversation_id}/messages", response_model=TurnOut)
def post_message(conversation_id: str, body: MessageCreate, service: ConversationsDep) -> TurnOut:
    """Add the customer's message (stored first) and return the assistant's reply."""
    turn = service.post(conversation_id, body.message)
    return TurnOut(conversation=ConversationOut.of(turn.conversation),
                   reply=reply_to_api(turn.reply),
                   ticket=TicketOut.of(turn.ticket) if turn.ticket else None)


@router.get("/{conversation_id}", response_model=ConversationDetail)
def get_conversation(conversation_id: str, store: StoreDep) -> ConversationDetail:
    """The conversation with its messages and tickets."""
    conv = store.conversations.get(conversation_id)
    return ConversationDetail(
        conversation=ConversationOut.of(conv),
        messages=[MessageOut.of(m) for m in store.messages.for_conversation(conversation_id)],
        tickets=[TicketOut.of(t) for t in store.tickets.find(conversation_id=conversation_id)])


@router.post("/{conversation_id}/feedback", response_model=FeedbackOut,
             status_code=status.HTTP_201_CREATED)
def feedback(conversation_id: str, body: FeedbackCreate,
             service: ConversationsDep) -> FeedbackOut:
    """CSAT (1–5) and/or whether the customer says it was resolved."""
    rec = service.feedback(conversation_id, body.csat, body.resolved, body.comment)
    return FeedbackOut(id=rec.id, conversation_id=rec.conversation_id, csat=rec.csat,
                       resolved=rec.resolved)
