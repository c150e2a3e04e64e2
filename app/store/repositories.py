"""``Store``: every repository over one database, built in one place (the app factory / CLI)."""

from __future__ import annotations

from app.config import Settings
from app.store.analytics_queries import AnalyticsRepository
from app.store.base import Clock
from app.store.conversations import ConversationRepository
from app.store.database import Database
from app.store.feedback import FeedbackRepository
from app.store.messages import MessageRepository
from app.store.models import utcnow
from app.store.records import BodyCodec
from app.store.tickets import TicketRepository
from app.store.variants import VariantRepository


class Store:
    """The store's repositories, sharing one ``Database``.

    Args:
        db: the database (migrated).
        codec: how message bodies are stored (default: plain text).
        clock: returns "now" as aware UTC (tests pass a fixed one).

    Example:
        >>> store = Store.from_settings(settings)
        >>> conv = store.conversations.create(user_id="u1", channel="web", variant="control")
        >>> store.messages.append(conv.id, "customer", "How do I reset my password?")
    """

    def __init__(
        self, db: Database, *, codec: BodyCodec | None = None, clock: Clock = utcnow
    ) -> None:
        self.db = db
        self.conversations = ConversationRepository(db, clock=clock)
        self.messages = MessageRepository(db, codec=codec, clock=clock)
        self.tickets = TicketRepository(db, clock=clock)
        self.feedback = FeedbackRepository(db, clock=clock)
        self.variants = VariantRepository(db, clock=clock)
        self.analytics = AnalyticsRepository(db, clock=clock)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, migrate: bool = True, codec: BodyCodec | None = None
    ) -> Store:
        """Open the configured database (migrating it to head unless told not to)."""
        return cls(Database.from_settings(settings, migrate=migrate), codec=codec)

    def close(self) -> None:
        """Release the database connections."""
        self.db.dispose()
