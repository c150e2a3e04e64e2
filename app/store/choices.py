"""The allowed values of the store's enum-like columns, and the one check that enforces them.

Enums are plain string columns (portable across SQLite and PostgreSQL, and a new value needs no
migration); the Python side is the single gatekeeper.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal, get_args

from app.errors import ValidationError

Channel = Literal["web", "sms", "email", "whatsapp", "facebook", "instagram", "api", "voice"]
ConversationStatus = Literal["open", "escalated", "resolved", "closed"]
MessageRole = Literal["customer", "assistant", "agent", "system"]
ReplyDecision = Literal["answer", "clarify", "escalate"]
TicketPriority = Literal["low", "normal", "high", "urgent"]
TicketStatus = Literal["open", "pending", "solved", "closed"]

CHANNELS: tuple[str, ...] = get_args(Channel)
CONVERSATION_STATUSES: tuple[str, ...] = get_args(ConversationStatus)
MESSAGE_ROLES: tuple[str, ...] = get_args(MessageRole)
REPLY_DECISIONS: tuple[str, ...] = get_args(ReplyDecision)
TICKET_PRIORITIES: tuple[str, ...] = get_args(TicketPriority)  # ordered, lowest first
TICKET_STATUSES: tuple[str, ...] = get_args(TicketStatus)
OPEN_TICKET_STATUSES: tuple[str, ...] = ("open", "pending")  # a conversation has at most one

DEFAULT_WORKSPACE = "default"


def check_choice(field: str, value: object, allowed: Collection[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``ValidationError``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(
            f"{field} must be one of {', '.join(allowed)}; got {value!r}"
        )
    return value
