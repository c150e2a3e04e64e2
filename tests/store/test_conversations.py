"""Conversations and their messages, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from app.domain import Citation, Reply, Usage
from app.errors import NotFoundError, ValidationError
from app.store import Database, Store
from app.store.models import Message

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_conversation_round_trip(store: Store) -> None:
    conv = store.conversations.create(
        user_id="u1", channel="sms", variant="concise", experiment="style",
        metadata={"locale": "de", "tags": ["vip"]}, at=T0,
    )
    assert len(conv.id) == 32
    got = store.conversations.get(conv.id)
    assert got == conv
    assert (got.workspace, got.status, got.channel) == ("default", "open", "sms")
    assert got.metadata == {"locale": "de", "tags": ["vip"]}
    assert got.created_at == T0 and got.created_at.tzinfo is not None


def test_messages_come_back_in_seq_order(store: Store) -> None:
    conv = store.conversations.create(user_id="u1")
    for i, role in enumerate(["customer", "assistant", "customer", "agent", "system"]):
        msg = store.messages.append(conv.id, role, f"m{i}", at=T0 + timedelta(seconds=i))
        assert msg.seq == i + 1
    msgs = store.messages.for_conversation(conv.id)
    assert [(m.seq, m.role, m.body) for m in msgs] == [
        (1, "customer", "m0"), (2, "assistant", "m1"), (3, "customer", "m2"),
        (4, "agent", "m3"), (5, "system", "m4"),
    ]
    assert [m.seq for m in store.messages.for_conversation(conv.id, after_seq=3)] == [4, 5]
    assert [m.body for m in store.messages.recent(conv.id, 2)] == ["m3", "m4"]
    after = store.conversations.get(conv.id)
    assert after.last_customer_message_at == T0 + timedelta(seconds=2)


def test_customer_message_is_committed_before_anything_else(
    store: Store, database: Database
) -> None:
    conv = store.conversations.create(user_id="u1")
    msg = store.messages.append(conv.id, "customer", "My parcel never arrived")
    # A separate engine: its own connection, so it sees only committed data.
    other = create_engine(database.engine.url)
    try:
        with other.connect() as conn:
            body = conn.execute(select(Message.body).where(Message.id == msg.id)).scalar()
        assert body == "My parcel never arrived"
    finally:
        other.dispose()


def test_assistant_reply_details_round_trip(store: Store) -> None:
    conv = store.conversations.create()
    reply = Reply(
        "Here is how [refunds]", decision="answer", reason=None,
        citations=[Citation("refunds", "Refunds", "https://help/refunds"), Citation("shipping")],
        retrieval=[{"id": "refunds", "score": 0.91}], confidence=0.82, latency_ms=412.5,
        provider="anthropic", model="claude-x", usage=Usage(900, 120, 40, 0),
        variant="concise", fallback_from="extractive", detail="why", query="refund?",
        sentiment=-0.4, priority="high",
    )
    store.messages.append(conv.id, "customer", "refund?", sentiment=-0.4)
    msg = store.messages.append(conv.id, "assistant", "Here is how [refunds]", reply=reply)
    assert msg.reply == reply
    customer, assistant = store.messages.for_conversation(conv.id)
    assert customer.sentiment == pytest.approx(-0.4) and customer.reply is None
    assert assistant.reply == reply


@pytest.mark.parametrize("kwargs", [
    {"role": "bot"},
    {"role": "customer", "reply": Reply("", decision="answer")},
    {"role": "assistant", "reply": Reply("", decision="guess")},
    {"role": "customer", "sentiment": 1.5},
])
def test_invalid_messages_are_refused(store: Store, kwargs: dict[str, object]) -> None:
    conv = store.conversations.create()
    with pytest.raises(ValidationError):
        store.messages.append(conv.id, body="x", **kwargs)  # type: ignore[arg-type]
    assert store.messages.for_conversation(conv.id) == []


def test_unknown_ids_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no conversation with id 'nope'"):
        store.conversations.get("nope")
    with pytest.raises(NotFoundError, match="nope"):
        store.messages.append("nope", "customer", "hi")
    with pytest.raises(NotFoundError):
        store.messages.for_conversation("nope")
    with pytest.raises(NotFoundError):
        store.messages.get("nope")
    with pytest.raises(NotFoundError):
        store.conversations.set_status("nope", "closed")


def test_status_and_variant_updates(store: Store) -> None:
    conv = store.conversations.create(at=T0)
    updated = store.conversations.set_status(conv.id, "resolved")
    assert updated.status == "resolved" and updated.updated_at > T0
    assert store.conversations.set_variant(conv.id, "b", "exp1").variant == "b"
    with pytest.raises(ValidationError, match="status must be one of"):
        store.conversations.set_status(conv.id, "done")
    with pytest.raises(ValidationError, match="channel must be one of"):
        store.conversations.create(channel="pigeon")
    assert store.conversations.get(conv.id).status == "resolved"


def test_find_filters_and_orders_newest_first(store: Store) -> None:
    a = store.conversations.create(user_id="u1", at=T0)
    b = store.conversations.create(user_id="u1", at=T0 + timedelta(hours=1))
    store.conversations.create(user_id="u2", workspace="other", at=T0)
    store.conversations.set_status(a.id, "closed")
    assert [c.id for c in store.conversations.find(user_id="u1")] == [b.id, a.id]
    assert [c.id for c in store.conversations.find(status="closed")] == [a.id]
    assert len(store.conversations.find(workspace="other")) == 1
    with pytest.raises(ValidationError):
        store.conversations.find(limit=0)


def test_unicode_and_long_bodies(store: Store) -> None:
    conv = store.conversations.create()
    texts = ["Grüße aus Köln — ¿qué tal? 你好 🙂🚚", "x" * 100_000, "ünï" * 40_000]
    for text in texts:
        store.messages.append(conv.id, "customer", text)
    assert [m.body for m in store.messages.for_conversation(conv.id)] == texts
    with pytest.raises(ValidationError, match="split it"):
        store.messages.append(conv.id, "customer", "x" * 1_000_001)


def test_read_receipts(store: Store) -> None:
    conv = store.conversations.create()
    store.messages.append(conv.id, "customer", "q")
    a1 = store.messages.append(conv.id, "assistant", "a1")
    store.messages.append(conv.id, "assistant", "a2")
    delivered = store.messages.mark_delivered(a1.id, at=T0)
    assert delivered.delivered_at == T0
    assert store.messages.mark_delivered(a1.id, at=T0 + timedelta(hours=1)).delivered_at == T0
    assert store.messages.mark_read(conv.id, up_to_seq=2, at=T0 + timedelta(minutes=1)) == 1
    q, r1, r2 = store.messages.for_conversation(conv.id)
    assert q.read_at is None  # the customer's own message
    assert r1.read_at == T0 + timedelta(minutes=1) and r1.delivered_at == T0
    assert r2.read_at is None
    assert store.messages.mark_read(conv.id, up_to_seq=3) == 1


def test_concurrent_appends_get_distinct_seqs(store: Store) -> None:
    conv = store.conversations.create()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                store.messages.append(conv.id, "customer", f"{n}-{i}")
        except BaseException as e:  # surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [m.seq for m in store.messages.for_conversation(conv.id)] == list(range(1, 21))


class ReversingCodec:
    """A stand-in for encryption: what is stored differs from what callers see."""

    def encode(self, body: str) -> str:
        return body[::-1]

    def decode(self, stored: str) -> str:
        return stored[::-1]


def test_bodies_pass_through_the_codec(database: Database) -> None:
    store = Store(database, codec=ReversingCodec())
    conv = store.conversations.create()
    msg = store.messages.append(conv.id, "customer", "secret order 42")
    assert msg.body == "secret order 42"
    assert store.messages.get(msg.id).body == "secret order 42"
    with database.session() as session:
        assert session.scalar(select(Message.body).where(Message.id == msg.id)) == "24 redro terces"
