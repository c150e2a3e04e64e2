"""The allowed values of the store's enum-like columns, and the one check that enforces them.

Enums are plain string columns (portable across SQLite and PostgreSQL, and a new value needs no
migration); the value sets themselves are the domain's (``app.domain``), checked here.
"""

from __future__ import annotations

from collections.abc import Collection

from app.domain import (
    DEFAULT_WORKSPACE,
    OPEN_TICKET_STATUSES,
    Channel,
    ConversationStatus,
    Decision,
    Priority,
    Role,
    TicketStatus,
    values,
)
from app.errors import ValidationError

CHANNELS: tuple[str, ...] = values(Channel)
CONVERSATION_STATUSES: tuple[str, ...] = values(ConversationStatus)
MESSAGE_ROLES: tuple[str, ...] = values(Role)
REPLY_DECISIONS: tuple[str, ...] = values(Decision)
TICKET_PRIORITIES: tuple[str, ...] = values(Priority)  # ordered, lowest first
TICKET_STATUSES: tuple[str, ...] = values(TicketStatus)

__all__ = ["CHANNELS", "CONVERSATION_STATUSES", "DEFAULT_WORKSPACE", "MESSAGE_ROLES",
           "OPEN_TICKET_STATUSES", "REPLY_DECISIONS", "TICKET_PRIORITIES", "TICKET_STATUSES",
           "check_choice"]


def check_choice(field: str, value: object, allowed: Collection[str]) -> str:
    """Return ``value`` (as a plain string) if it is one of ``allowed``; otherwise raise
    ``ValidationError``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(
            f"{field} must be one of {', '.join(allowed)}; got {value!r}"
        )
    return str(value)
