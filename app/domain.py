"""The domain vocabulary: the value sets every layer speaks, and the one reply record.

Every module that names a channel, a decision, a reason, a priority, a ticket or conversation
status or a message role takes it from here; the store, the API schemas, the evaluation rows and
the facade map ``Reply`` with the small pure functions in ``app/mappers.py``.

Members are ``StrEnum``s, so they compare equal to (and serialise as) their plain string
values: ``Decision.ANSWER == "answer"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_WORKSPACE = "default"


class Channel(StrEnum):
    """Where a conversation happens."""

    WEB = "web"
    SMS = "sms"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    API = "api"
    VOICE = "voice"


class Decision(StrEnum):
    """What the assistant did with a customer turn."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    ESCALATE = "escalate"


class Reason(StrEnum):
    """Why a turn was clarified or escalated, in the escalation rules' priority order (the
    first rule that matches wins); ``MANUAL`` is a hand-off opened by a person or the API."""

    SELF_HARM = "self_harm"
    ACCOUNT_TAKEOVER = "account_takeover"
    SENSITIVE_FRAUD = "sensitive_fraud"
    SENSITIVE_LEGAL = "sensitive_legal"
    EXPLICIT_REQUEST = "explicit_request"
    MODEL_REQUESTED = "model_requested"
    NEGATIVE_SENTIMENT = "negative_sentiment"
    REPEATED_FAILURE = "repeated_failure"
    LOW_CONFIDENCE = "low_confidence"
    MANUAL = "manual"


class Priority(StrEnum):
    """Queue priority of a ticket, lowest first (``MEDIUM`` is an alias of ``NORMAL``)."""

    LOW = "low"
    NORMAL = "normal"
    MEDIUM = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    CLOSED = "closed"


class ConversationStatus(StrEnum):
    OPEN = "open"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Role(StrEnum):
    """Who wrote a message."""

    CUSTOMER = "customer"
    ASSISTANT = "assistant"
    AGENT = "agent"
    SYSTEM = "system"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The distinct string values of ``enum``, in declaration order (aliases once)."""
    return tuple(dict.fromkeys(m.value for m in enum))


OPEN_TICKET_STATUSES: tuple[str, ...] = (TicketStatus.OPEN, TicketStatus.PENDING)
#: the roles whose messages make up a conversation's history for the responder
DIALOGUE_ROLES: tuple[str, ...] = (Role.CUSTOMER, Role.ASSISTANT, Role.AGENT)


@dataclass(frozen=True)
class Turn:
    """One message of the conversation so far."""

    role: Role | str
    text: str


@dataclass(frozen=True)
class Citation:
    """An article the reply relies on (past conversations ground answers but are never cited)."""

    id: str
    title: str = ""
    url: str = ""


@dataclass
class Usage:
    """Token usage when the provider reports it."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass
class Reply:
    """The assistant's reply to one customer turn and everything recorded about how it was made.

    The one reply record: the responder produces it, the store keeps it with the message
    (``passages`` excepted: what the model was given is too large to keep per message), and
    ``app.mappers`` turns it into the API schema, the evaluation row and the facade dict.

    Example:
        >>> Reply("You can return it within 30 days.", Decision.ANSWER,
        ...       citations=[Citation("returns", "Returns", "https://help/returns")]).cited_article_ids
        ['returns']
    """

    text: str
    decision: Decision | str
    reason: str | None = None
    priority: str = Priority.NORMAL
    variant: str = ""
    confidence: float = 0.0
    citations: list[Citation] = field(default_factory=list)
    retrieval: list[dict[str, Any]] = field(default_factory=list)
    provider: str = ""
    model: str = ""
    latency_ms: float = 0.0
    sentiment: float = 0.0
    query: str = ""
    usage: Usage | None = None
    fallback_from: str | None = None
    detail: str = ""
    passages: list[Any] = field(default_factory=list, compare=False)  # transient

    @property
    def cited_article_ids(self) -> list[str]:
        return [c.id for c in self.citations]
