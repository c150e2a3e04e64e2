"""The analytics queries: counts and per-conversation rows for the pure metrics in
``app.store.analytics``. Every query selects the cohort of conversations created in
``[start, end)`` (optionally in one workspace); rates are computed outside SQL.

Example:
    >>> outcomes = store.analytics.outcomes(start, end)
    >>> summarize_by_variant(outcomes)["concise"].hard_resolution_rate
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, union
from sqlalchemy.orm import aliased

from app.domain import ConversationStatus, Decision
from app.errors import ValidationError
from app.store.analytics import (
    DEFAULT_RETURN_WINDOW,
    ConversationOutcome,
    ConversationStart,
    FeedbackRow,
    FirstResponseSample,
    ReasonCount,
    VariantChannelTotal,
    first_response_seconds,
    latest_verdicts,
    returned_conversations,
)
from app.store.base import Repository, as_utc
from app.store.models import Conversation, Feedback, Message, Ticket

UNSPECIFIED_REASON = "unspecified"


def _cohort(start: datetime, end: datetime, workspace: str | None) -> list[ColumnElement[bool]]:
    start, end = as_utc(start), as_utc(end)
    if start >= end:
        raise ValidationError(f"the date range is empty: start {start} is not before end {end}")
    where = [Conversation.created_at >= start, Conversation.created_at < end]
    if workspace is not None:
        where.append(Conversation.workspace == workspace)
    return where


class AnalyticsRepository(Repository):
    """Read-only queries behind the analytics endpoint, the CLI ``stats`` and the notebooks."""

    def totals(
        self, start: datetime, end: datetime, *, workspace: str | None = None
    ) -> list[VariantChannelTotal]:
        """Conversation and message counts per (variant, channel), sorted by both."""
        def count_role(role: str) -> Any:
            return func.coalesce(func.sum(case((Message.role == role, 1), else_=0)), 0)

        stmt = (
            select(
                Conversation.variant, Conversation.channel,
                func.count(func.distinct(Conversation.id)),
                count_role("customer"), count_role("assistant"),
            )
            .outerjoin(Message, Message.conversation_id == Conversation.id)
            .where(*_cohort(start, end, workspace))
            .group_by(Conversation.variant, Conversation.channel)
        )
        with self.db.session() as session:
            rows = [
                VariantChannelTotal(v, ch, int(n), int(c), int(a))
                for v, ch, n, c, a in session.execute(stmt)
            ]
        return sorted(rows, key=lambda r: (r.variant or "", r.channel))

    def escalations_by_reason(
        self, start: datetime, end: datetime, *, workspace: str | None = None
    ) -> list[ReasonCount]:
        """Escalated conversations per (variant, reason), most frequent first.

        Reasons come from escalating replies and from linked tickets; a conversation counts
        once per distinct reason. Missing reasons count as ``"unspecified"``.
        """
        replies = select(
            Message.conversation_id.label("cid"),
            func.coalesce(Message.reason, UNSPECIFIED_REASON).label("reason"),
        ).where(Message.decision == Decision.ESCALATE.value)
        tickets = select(
            Ticket.conversation_id.label("cid"),
            func.coalesce(Ticket.reason_code, UNSPECIFIED_REASON).label("reason"),
        ).where(Ticket.conversation_id.is_not(None))
        reasons = union(replies, tickets).subquery()  # UNION drops duplicate pairs
        stmt = (
            select(Conversation.variant, reasons.c.reason, func.count())
            .join(reasons, reasons.c.cid == Conversation.id)
            .where(*_cohort(start, end, workspace))
            .group_by(Conversation.variant, reasons.c.reason)
        )
        with self.db.session() as session:
            rows = [ReasonCount(v, r, int(n)) for v, r, n in session.execute(stmt)]
        return sorted(rows, key=lambda r: (-r.conversations, r.variant or "", r.reason))

    def first_response_samples(
        self, start: datetime, end: datetime, *, workspace: str | None = None
    ) -> list[FirstResponseSample]:
        """Per conversation with a customer message: its first customer message time and the
        first assistant message after it (None when unanswered)."""
        first = (
            select(
                Message.conversation_id.label("cid"),
                func.min(Message.seq).label("seq"),
                func.min(Message.created_at).label("at"),
            )
            .where(Message.role == "customer")
            .group_by(Message.conversation_id)
            .subquery()
        )
        reply = aliased(Message)
        first_reply = (
            select(func.min(reply.created_at))
            .where(
                reply.conversation_id == first.c.cid, reply.role == "assistant",
                reply.seq > first.c.seq,
            )
            .scalar_subquery()
        )
        stmt = (
            select(
                Conversation.id, Conversation.variant, Conversation.channel, first.c.at,
                first_reply,
            )
            .join(first, first.c.cid == Conversation.id)
            .where(*_cohort(start, end, workspace))
        )
        with self.db.session() as session:
            return [
                FirstResponseSample(cid, v, ch, as_utc(fc), None if fr is None else as_utc(fr))
                for cid, v, ch, fc, fr in session.execute(stmt)
            ]

    def returned_within(
        self, start: datetime, end: datetime, window: timedelta = DEFAULT_RETURN_WINDOW,
        *, workspace: str | None = None,
    ) -> set[str]:
        """Ids of cohort conversations whose user started another conversation within
        ``window`` of this one's start (see ``analytics.returned_conversations``)."""
        where = _cohort(start, end, workspace)
        users = (
            select(Conversation.workspace, Conversation.user_id)
            .where(*where, Conversation.user_id.is_not(None))
            .distinct()
            .subquery()
        )
        later = aliased(Conversation)
        stmt = (
            select(later.id, later.workspace, later.user_id, later.created_at)
            .join(users, and_(later.workspace == users.c.workspace,
                              later.user_id == users.c.user_id))
            .where(later.created_at >= as_utc(start),
                   later.created_at <= as_utc(end) + window)
        )
        with self.db.session() as session:
            starts = [ConversationStart(*row) for row in session.execute(stmt)]
        cohort = {s.conversation_id for s in starts if s.created_at < as_utc(end)}
        return returned_conversations(starts, window) & cohort

    def outcomes(
        self, start: datetime, end: datetime, *, window: timedelta = DEFAULT_RETURN_WINDOW,
        as_of: datetime | None = None, workspace: str | None = None,
    ) -> list[ConversationOutcome]:
        """One ``ConversationOutcome`` per cohort conversation, oldest first; feed them to
        ``analytics.summarize`` / ``summarize_by_variant``. ``as_of`` defaults to now."""
        as_of = self._now(as_of)
        where = _cohort(start, end, workspace)
        escalated = or_(
            Conversation.status == ConversationStatus.ESCALATED.value,
            exists().where(Message.conversation_id == Conversation.id,
                           Message.decision == Decision.ESCALATE.value),
            exists().where(Ticket.conversation_id == Conversation.id),
        )
        said = aliased(Message)
        engaged = exists().where(said.conversation_id == Conversation.id,
                                 said.role == "customer")
        base = (
            select(Conversation.id, Conversation.variant, Conversation.channel,
                   Conversation.created_at, case((escalated, 1), else_=0),
                   case((engaged, 1), else_=0))
            .where(*where)
            .order_by(Conversation.created_at, Conversation.id)
        )
        feedback = (
            select(Feedback.conversation_id, Feedback.csat, Feedback.resolved)
            .join(Conversation, Conversation.id == Feedback.conversation_id)
            .where(*where)
            .order_by(Feedback.created_at, Feedback.id)
        )
        with self.db.session() as session:
            rows = list(session.execute(base))
            verdicts = latest_verdicts(FeedbackRow(*r) for r in session.execute(feedback))
        returned = self.returned_within(start, end, window, workspace=workspace)
        frt = {
            s.conversation_id: first_response_seconds(s)
            for s in self.first_response_samples(start, end, workspace=workspace)
        }
        out = []
        for cid, variant, channel, created_at, esc, spoke in rows:
            resolved, csat = verdicts.get(cid, (None, None))
            out.append(ConversationOutcome(
                conversation_id=cid, variant=variant, channel=channel, created_at=created_at,
                escalated=bool(esc), resolved=resolved, csat=csat, returned=cid in returned,
                window_elapsed=created_at + window <= as_of, first_response_s=frt.get(cid),
                engaged=bool(spoke),
            ))
        return out
