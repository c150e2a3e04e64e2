"""Conversations: create, read, list, and change status or variant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import ConversationStatus
from app.errors import ValidationError
from app.store.base import Repository, require_conversation
from app.store.choices import CHANNELS, CONVERSATION_STATUSES, DEFAULT_WORKSPACE, check_choice
from app.store.models import Conversation
from app.store.records import ConversationRecord

MAX_PAGE = 500


def check_page(limit: int, offset: int) -> None:
    """Refuse page sizes we will not serve."""
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationError(
            f"limit must be 1..{MAX_PAGE} and offset >= 0; got limit={limit}, offset={offset}"
        )


class ConversationRepository(Repository):
    """Conversations (their messages are in ``MessageRepository``).

    Example:
        >>> conv = store.conversations.create(user_id="u1", channel="sms", variant="control")
        >>> store.conversations.set_status(conv.id, "resolved").status
        'resolved'
    """

    def create(
        self, *, workspace: str = DEFAULT_WORKSPACE, user_id: str | None = None,
        channel: str = "web", variant: str | None = None, experiment: str | None = None,
        metadata: dict[str, Any] | None = None, at: datetime | None = None,
    ) -> ConversationRecord:
        """Start a conversation (``at`` backdates it; default now)."""
        check_choice("channel", channel, CHANNELS)
        when = self._now(at)

        def work(session: Session) -> ConversationRecord:
            row = Conversation(
                workspace=workspace, user_id=user_id, channel=channel, variant=variant,
                experiment=experiment, status=ConversationStatus.OPEN.value, created_at=when,
                updated_at=when,
                meta=dict(metadata or {}),
            )
            session.add(row)
            session.flush()
            return ConversationRecord.from_row(row)

        return self._write("create the conversation", work)

    def get(self, conversation_id: str) -> ConversationRecord:
        """The conversation, or ``NotFoundError``."""
        with self.db.session() as session:
            return ConversationRecord.from_row(require_conversation(session, conversation_id))

    def find(
        self, *, workspace: str | None = None, user_id: str | None = None,
        status: str | None = None, limit: int = 50, offset: int = 0,
    ) -> list[ConversationRecord]:
        """Conversations matching the filters, newest first."""
        check_page(limit, offset)
        stmt = select(Conversation)
        if workspace is not None:
            stmt = stmt.where(Conversation.workspace == workspace)
        if user_id is not None:
            stmt = stmt.where(Conversation.user_id == user_id)
        if status is not None:
            check_choice("status", status, CONVERSATION_STATUSES)
            stmt = stmt.where(Conversation.status == status)
        stmt = stmt.order_by(Conversation.created_at.desc(), Conversation.id)
        with self.db.session() as session:
            rows = session.scalars(stmt.limit(limit).offset(offset))
            return [ConversationRecord.from_row(r) for r in rows]

    def set_status(self, conversation_id: str, status: str) -> ConversationRecord:
        """Move the conversation to ``status`` (open, escalated, resolved, closed)."""
        check_choice("status", status, CONVERSATION_STATUSES)

        def work(session: Session) -> ConversationRecord:
            row = require_conversation(session, conversation_id)
            row.status = status
            row.updated_at = self._now()
            session.flush()
            return ConversationRecord.from_row(row)

        return self._write("update the conversation", work)

    def set_variant(
        self, conversation_id: str, variant: str | None, experiment: str | None = None
    ) -> ConversationRecord:
        """Record which A/B arm (of which experiment) serves the conversation."""

        def work(session: Session) -> ConversationRecord:
            row = require_conversation(session, conversation_id)
            row.variant = variant
            row.experiment = experiment
            row.updated_at = self._now()
            session.flush()
            return ConversationRecord.from_row(row)

        return self._write("update the conversation", work)
