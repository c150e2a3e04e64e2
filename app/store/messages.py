"""Messages: append (committed at once), list in order, and read receipts.

Bodies pass through a ``BodyCodec`` on the way in and out, so encryption at rest can be
switched on here without touching callers.
"""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from app.domain import Reply
from app.errors import NotFoundError, ValidationError
from app.mappers import reply_to_columns
from app.store.base import Clock, Repository, require_conversation
from app.store.choices import MESSAGE_ROLES, REPLY_DECISIONS, check_choice
from app.store.database import Database
from app.store.models import Conversation, Message, utcnow
from app.store.records import BodyCodec, MessageRecord, PlainBodyCodec

MAX_BODY_CHARS = 1_000_000
# Read receipts are about what we sent to the customer.
OUTBOUND_ROLES = ("assistant", "agent")


def check_message(role: str, body: str, reply: Reply | None, sentiment: float | None) -> None:
    """Refuse a message the store should not hold."""
    check_choice("role", role, MESSAGE_ROLES)
    if not isinstance(body, str):
        raise ValidationError(f"message body must be text; got {type(body).__name__}")
    if len(body) > MAX_BODY_CHARS:
        raise ValidationError(
            f"message body is {len(body)} characters; the limit is {MAX_BODY_CHARS}, so split it"
        )
    if reply is not None:
        if role != "assistant":
            raise ValidationError(f"reply details belong to assistant messages, not {role!r}")
        check_choice("decision", reply.decision, REPLY_DECISIONS)
    if sentiment is not None and not (math.isfinite(sentiment) and -1.0 <= sentiment <= 1.0):
        raise ValidationError(f"sentiment is a compound score in [-1, 1]; got {sentiment!r}")


class MessageRepository(Repository):
    """The messages of conversations.

    Args:
        db: the database.
        codec: how bodies are stored (default: as they are).
        clock: returns "now".

    Example:
        >>> msg = store.messages.append(conv.id, "customer", "Where is my order?")
        >>> [m.body for m in store.messages.for_conversation(conv.id)]
        ['Where is my order?']
    """

    def __init__(
        self, db: Database, *, codec: BodyCodec | None = None, clock: Clock = utcnow
    ) -> None:
        super().__init__(db, clock=clock)
        self.codec: BodyCodec = codec or PlainBodyCodec()

    def append(
        self, conversation_id: str, role: str, body: str, *, reply: Reply | None = None,
        sentiment: float | None = None, at: datetime | None = None,
    ) -> MessageRecord:
        """Add a message as the next ``seq`` of the conversation and commit before returning.

        Customer messages also stamp the conversation's ``last_customer_message_at``.
        """
        check_message(role, body, reply, sentiment)
        when = self._now(at)
        stored = self.codec.encode(body)

        def work(session: Session) -> MessageRecord:
            # Touch the conversation first: on PostgreSQL that row lock, and on SQLite the write
            # lock it takes, serialise appends to one conversation, so max(seq) + 1 is safe.
            # The unique (conversation_id, seq) constraint and the retry are the backstop.
            newer = case((Conversation.updated_at < when, when), else_=Conversation.updated_at)
            stamps: dict[str, object] = {"updated_at": newer}
            if role == "customer":
                stamps["last_customer_message_at"] = when
            touched = session.execute(
                update(Conversation).where(Conversation.id == conversation_id).values(stamps)
                .execution_options(synchronize_session=False)
            )
            if not getattr(touched, "rowcount", 0):
                require_conversation(session, conversation_id)  # raises NotFoundError
            last = session.scalar(
                select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
            )
            row = Message(
                conversation_id=conversation_id, seq=(last or 0) + 1, role=role, body=stored,
                created_at=when, sentiment=sentiment,
            )
            if reply is not None:
                _apply_reply(row, reply)
            session.add(row)
            session.flush()
            return MessageRecord.from_row(row, self.codec)

        return self._write("append the message", work)

    def get(self, message_id: str) -> MessageRecord:
        """One message, or ``NotFoundError``."""
        with self.db.session() as session:
            row = session.get(Message, message_id)
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r}; check the id")
            return MessageRecord.from_row(row, self.codec)

    def for_conversation(
        self, conversation_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[MessageRecord]:
        """The conversation's messages with ``seq > after_seq``, oldest first."""
        stmt = (
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.seq > after_seq)
            .order_by(Message.seq)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.session() as session:
            require_conversation(session, conversation_id)
            return [MessageRecord.from_row(r, self.codec) for r in session.scalars(stmt)]

    def recent(self, conversation_id: str, limit: int) -> list[MessageRecord]:
        """The last ``limit`` messages, oldest first (the history an answer model sees)."""
        stmt = (
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.seq.desc())
            .limit(limit)
        )
        with self.db.session() as session:
            require_conversation(session, conversation_id)
            rows = list(session.scalars(stmt))
        return [MessageRecord.from_row(r, self.codec) for r in reversed(rows)]

    def mark_delivered(self, message_id: str, at: datetime | None = None) -> MessageRecord:
        """Stamp ``delivered_at`` (the first stamp wins)."""
        when = self._now(at)

        def work(session: Session) -> MessageRecord:
            row = session.get(Message, message_id)
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r}; check the id")
            if row.delivered_at is None:
                row.delivered_at = when
            session.flush()
            return MessageRecord.from_row(row, self.codec)

        return self._write("mark the message delivered", work)

    def mark_read(self, conversation_id: str, up_to_seq: int, at: datetime | None = None) -> int:
        """Stamp ``read_at`` (and ``delivered_at`` if missing) on outbound messages up to
        ``up_to_seq``; returns how many were newly marked read."""
        when = self._now(at)
        scope = (
            Message.conversation_id == conversation_id,
            Message.seq <= up_to_seq,
            Message.role.in_(OUTBOUND_ROLES),
        )

        def work(session: Session) -> int:
            require_conversation(session, conversation_id)
            session.execute(
                update(Message).where(*scope, Message.delivered_at.is_(None))
                .values(delivered_at=when).execution_options(synchronize_session=False)
            )
            result = session.execute(
                update(Message).where(*scope, Message.read_at.is_(None))
                .values(read_at=when).execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return self._write("mark messages read", work)


def _apply_reply(row: Message, reply: Reply) -> None:
    for column, value in reply_to_columns(reply).items():
        setattr(row, column, value)
