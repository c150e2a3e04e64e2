"""Feedback: CSAT (1-5) and "was it resolved" per conversation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import ValidationError
from app.store.base import Repository, require_conversation
from app.store.models import Feedback
from app.store.records import FeedbackRecord

MAX_COMMENT_CHARS = 10_000


def check_feedback(csat: int | None, resolved: bool | None, comment: str | None) -> None:
    """Refuse empty or out-of-range feedback."""
    if csat is None and resolved is None and not comment:
        raise ValidationError("feedback needs at least one of csat, resolved or comment")
    if csat is not None and (isinstance(csat, bool) or csat not in range(1, 6)):
        raise ValidationError(f"csat must be an integer from 1 to 5; got {csat!r}")
    if resolved is not None and not isinstance(resolved, bool):
        raise ValidationError(f"resolved must be true or false; got {resolved!r}")
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise ValidationError(f"comment is longer than {MAX_COMMENT_CHARS} characters")


class FeedbackRepository(Repository):
    """Customer feedback; a conversation may collect several (the latest counts in analytics).

    Example:
        >>> store.feedback.record(conv.id, csat=5, resolved=True, comment="thanks!")
    """

    def record(
        self, conversation_id: str, *, csat: int | None = None, resolved: bool | None = None,
        comment: str | None = None, at: datetime | None = None,
    ) -> FeedbackRecord:
        """Store one piece of feedback on the conversation."""
        check_feedback(csat, resolved, comment)
        when = self._now(at)

        def work(session: Session) -> FeedbackRecord:
            require_conversation(session, conversation_id)
            row = Feedback(
                conversation_id=conversation_id, csat=csat, resolved=resolved, comment=comment,
                created_at=when,
            )
            session.add(row)
            session.flush()
            return FeedbackRecord.from_row(row)

        return self._write("record the feedback", work)

    def for_conversation(self, conversation_id: str) -> list[FeedbackRecord]:
        """The conversation's feedback, oldest first."""
        stmt = (
            select(Feedback)
            .where(Feedback.conversation_id == conversation_id)
            .order_by(Feedback.created_at, Feedback.id)
        )
        with self.db.session() as session:
            require_conversation(session, conversation_id)
            return [FeedbackRecord.from_row(r) for r in session.scalars(stmt)]
