"""Tickets: hand-offs to humans, numbered per workspace, at most one open per conversation."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain import ConversationStatus, TicketStatus
from app.errors import NotFoundError, ValidationError
from app.store.base import Repository, require_conversation
from app.store.choices import (
    DEFAULT_WORKSPACE,
    OPEN_TICKET_STATUSES,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    check_choice,
)
from app.store.conversations import check_page
from app.store.models import Ticket
from app.store.records import TicketRecord, ticket_ref

MAX_SUBJECT_CHARS = 500
_REF = re.compile(r"^(?:T-)?0*(\d+)$", re.IGNORECASE)


class _Unset:
    """Marks "leave as is" where None means "clear"."""


UNSET: Final = _Unset()


def check_subject(subject: str) -> str:
    """A trimmed, non-empty subject of at most ``MAX_SUBJECT_CHARS``."""
    subject = subject.strip()
    if not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise ValidationError(f"ticket subject must be 1..{MAX_SUBJECT_CHARS} characters")
    return subject


def higher_priority(a: str, b: str) -> str:
    """The more urgent of two priorities."""
    return max(a, b, key=TICKET_PRIORITIES.index)


class TicketRepository(Repository):
    """Tickets.

    Example:
        >>> ticket, created = store.tickets.escalate(conv.id, subject="Refund", reason_code="x")
        >>> ticket.ref
        'T-000001'
    """

    def create(
        self, subject: str, *, description: str = "", conversation_id: str | None = None,
        priority: str = "normal", reason_code: str | None = None, assignee: str | None = None,
        workspace: str | None = None, at: datetime | None = None,
    ) -> TicketRecord:
        """Open a ticket. A conversation's ticket takes the conversation's workspace.

        Raises ``ValidationError`` when the conversation already has an open ticket (use
        ``escalate`` to update that one instead).
        """
        subject = check_subject(subject)
        check_choice("priority", priority, TICKET_PRIORITIES)
        when = self._now(at)

        def work(session: Session) -> TicketRecord:
            space = workspace or DEFAULT_WORKSPACE
            if conversation_id is not None:
                space = workspace or require_conversation(session, conversation_id).workspace
                existing = _open_ticket(session, conversation_id)
                if existing is not None:
                    raise ValidationError(
                        f"conversation {conversation_id!r} already has open ticket "
                        f"{ticket_ref(existing.number)}; update that ticket instead"
                    )
            row = _new_ticket(
                session, space, subject=subject, description=description,
                conversation_id=conversation_id, priority=priority, reason_code=reason_code,
                assignee=assignee, when=when,
            )
            return TicketRecord.from_row(row)

        return self._write("create the ticket", work)

    def escalate(
        self, conversation_id: str, *, subject: str, description: str = "",
        reason_code: str | None = None, priority: str = "normal", at: datetime | None = None,
    ) -> tuple[TicketRecord, bool]:
        """Hand the conversation to humans: update its open ticket, or open one.

        The open ticket takes the new reason code, the higher of the two priorities and the
        new description appended; the conversation's status becomes ``escalated``, in the same
        transaction. Returns the ticket and whether it was created.
        """
        subject = check_subject(subject)
        check_choice("priority", priority, TICKET_PRIORITIES)
        when = self._now(at)

        def work(session: Session) -> tuple[TicketRecord, bool]:
            conv = require_conversation(session, conversation_id, for_update=True)
            conv.status = ConversationStatus.ESCALATED.value
            conv.updated_at = max(conv.updated_at, when)
            row = _open_ticket(session, conversation_id)
            if row is None:
                row = _new_ticket(
                    session, conv.workspace, subject=subject, description=description,
                    conversation_id=conversation_id, priority=priority,
                    reason_code=reason_code, assignee=None, when=when,
                )
                return TicketRecord.from_row(row), True
            row.priority = higher_priority(row.priority, priority)
            if reason_code is not None:
                row.reason_code = reason_code
            if description and description not in row.description:
                row.description = f"{row.description}\n\n{description}".strip()
            row.updated_at = when
            session.flush()
            return TicketRecord.from_row(row), False

        return self._write("escalate the conversation", work)

    def get(self, ticket_id: str) -> TicketRecord:
        """The ticket with this id, or ``NotFoundError``."""
        with self.db.session() as session:
            return TicketRecord.from_row(_require(session, ticket_id))

    def get_by_number(self, number: int | str, workspace: str = DEFAULT_WORKSPACE) -> TicketRecord:
        """The ticket with this number (``123`` or ``"T-000123"``), or ``NotFoundError``."""
        match = _REF.match(str(number).strip())
        if match is None:
            raise ValidationError(f"{number!r} is not a ticket number; use e.g. T-000123 or 123")
        stmt = select(Ticket).where(
            Ticket.workspace == workspace, Ticket.number == int(match.group(1))
        )
        with self.db.session() as session:
            row = session.scalar(stmt)
            if row is None:
                raise NotFoundError(f"no ticket {number!r} in workspace {workspace!r}")
            return TicketRecord.from_row(row)

    def open_for_conversation(self, conversation_id: str) -> TicketRecord | None:
        """The conversation's open (or pending) ticket, if any."""
        with self.db.session() as session:
            require_conversation(session, conversation_id)
            row = _open_ticket(session, conversation_id)
            return None if row is None else TicketRecord.from_row(row)

    def update(
        self, ticket_id: str, *, status: str | None = None, priority: str | None = None,
        subject: str | None = None, description: str | None = None,
        reason_code: str | _Unset | None = UNSET, assignee: str | _Unset | None = UNSET,
    ) -> TicketRecord:
        """Change the given fields; ``None`` clears ``reason_code``/``assignee``.

        Refuses unknown statuses or priorities, and reopening a ticket while its conversation
        has another open one, with ``ValidationError``.
        """
        if status is not None:
            check_choice("status", status, TICKET_STATUSES)
        if priority is not None:
            check_choice("priority", priority, TICKET_PRIORITIES)
        if subject is not None:
            subject = check_subject(subject)
        try:
            with self.db.session() as session:
                row = _require(session, ticket_id)
                if status is not None:
                    row.status = status
                if priority is not None:
                    row.priority = priority
                if subject is not None:
                    row.subject = subject
                if description is not None:
                    row.description = description
                if not isinstance(reason_code, _Unset):
                    row.reason_code = reason_code
                if not isinstance(assignee, _Unset):
                    row.assignee = assignee
                row.updated_at = self._now()
                session.flush()
                return TicketRecord.from_row(row)
        except IntegrityError as e:
            raise ValidationError(
                f"ticket {ticket_id!r} cannot be reopened: its conversation already has another "
                "open ticket; update that one instead"
            ) from e

    def find(
        self, *, workspace: str | None = None, status: str | None = None,
        conversation_id: str | None = None, assignee: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[TicketRecord]:
        """Tickets matching the filters, newest first."""
        check_page(limit, offset)
        stmt = select(Ticket)
        if workspace is not None:
            stmt = stmt.where(Ticket.workspace == workspace)
        if status is not None:
            check_choice("status", status, TICKET_STATUSES)
            stmt = stmt.where(Ticket.status == status)
        if conversation_id is not None:
            stmt = stmt.where(Ticket.conversation_id == conversation_id)
        if assignee is not None:
            stmt = stmt.where(Ticket.assignee == assignee)
        stmt = stmt.order_by(Ticket.created_at.desc(), Ticket.number.desc())
        with self.db.session() as session:
            rows = session.scalars(stmt.limit(limit).offset(offset))
            return [TicketRecord.from_row(r) for r in rows]


def _require(session: Session, ticket_id: str) -> Ticket:
    row = session.get(Ticket, ticket_id)
    if row is None:
        raise NotFoundError(f"no ticket with id {ticket_id!r}; check the id")
    return row


def _open_ticket(session: Session, conversation_id: str) -> Ticket | None:
    return session.scalar(
        select(Ticket).where(
            Ticket.conversation_id == conversation_id, Ticket.status.in_(OPEN_TICKET_STATUSES)
        )
    )


def _new_ticket(
    session: Session, workspace: str, *, subject: str, description: str,
    conversation_id: str | None, priority: str, reason_code: str | None,
    assignee: str | None, when: datetime,
) -> Ticket:
    # max + 1 may collide with a concurrent writer; the unique (workspace, number) constraint
    # turns that into an IntegrityError and Repository._write runs us again.
    last = session.scalar(select(func.max(Ticket.number)).where(Ticket.workspace == workspace))
    row = Ticket(
        workspace=workspace, number=(last or 0) + 1, conversation_id=conversation_id,
        subject=subject, description=description, priority=priority, status=TicketStatus.OPEN.value,
        reason_code=reason_code, assignee=assignee, created_at=when, updated_at=when,
    )
    session.add(row)
    session.flush()
    return row
