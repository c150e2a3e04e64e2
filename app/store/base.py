"""What every repository shares: the database, a clock, lookups that 404, and conflict retries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import NotFoundError, ValidationError
from app.store.database import Database
from app.store.models import Conversation, utcnow

T = TypeVar("T")
Clock = Callable[[], datetime]
CONFLICT_ATTEMPTS = 5


def as_utc(value: datetime) -> datetime:
    """``value`` as aware UTC; naive datetimes are taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Repository:
    """Base for the repositories: each public method is one short transaction.

    Args:
        db: the database.
        clock: returns "now" (aware UTC); tests pass a fixed one.
    """

    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def _now(self, at: datetime | None = None) -> datetime:
        return as_utc(at) if at is not None else self.clock()

    def _write(self, what: str, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a transaction, rerunning it when a unique constraint catches a race.

        ``work`` must re-read what it depends on, so a rerun sees the winner's row (and
        raises ``NotFoundError``/``ValidationError`` itself when that is the right answer).
        """
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self.db.session() as session:
                    return work(session)
            except IntegrityError as e:
                if attempt == CONFLICT_ATTEMPTS:
                    raise ValidationError(
                        f"could not {what}: concurrent writes kept conflicting "
                        f"({e.orig}); retry the request"
                    ) from e
        raise AssertionError("unreachable")  # pragma: no cover


def require_conversation(
    session: Session, conversation_id: str, *, for_update: bool = False
) -> Conversation:
    """The conversation row, or ``NotFoundError`` naming the id."""
    row = session.get(Conversation, conversation_id, with_for_update=for_update)
    if row is None:
        raise NotFoundError(
            f"no conversation with id {conversation_id!r}; check the id, or create the "
            "conversation first"
        )
    return row
