"""The store: conversations, messages, tickets, feedback and A/B assignments in SQL.

SQLite under the data dir by default, PostgreSQL (or any SQLAlchemy URL) via DATABASE_URL;
schema managed by the Alembic migrations in ``app/store/migrations``. The repositories are the
only code that talks SQL; they return plain records.

Example:
    >>> store = Store.from_settings(get_settings())
    >>> conv = store.conversations.create(user_id="u1", channel="sms")
    >>> store.messages.append(conv.id, "customer", "hi")
"""

from app.store.analytics import ConversationOutcome, Summary, summarize, summarize_by_variant
from app.store.database import Database, current_revision, head_revision, make_engine, upgrade
from app.store.records import (
    BodyCodec,
    ConversationRecord,
    FeedbackRecord,
    MessageRecord,
    PlainBodyCodec,
    TicketRecord,
    VariantAssignmentRecord,
)
from app.store.repositories import Store

__all__ = [
    "BodyCodec",
    "ConversationOutcome",
    "ConversationRecord",
    "Database",
    "FeedbackRecord",
    "MessageRecord",
    "PlainBodyCodec",
    "Store",
    "Summary",
    "TicketRecord",
    "VariantAssignmentRecord",
    "current_revision",
    "head_revision",
    "make_engine",
    "summarize",
    "summarize_by_variant",
    "upgrade",
]
