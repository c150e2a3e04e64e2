"""Tickets: numbering, updates and their validation, one open ticket per conversation."""

from __future__ import annotations

import pytest

from app.errors import NotFoundError, ValidationError
from app.store import Store


def test_create_get_and_number(store: Store) -> None:
    first = store.tickets.create("Cannot log in", description="since yesterday")
    second = store.tickets.create("Invoice wrong", priority="high", reason_code="billing")
    assert (first.number, first.ref) == (1, "T-000001")
    assert second.ref == "T-000002"
    assert store.tickets.get(second.id) == second
    assert store.tickets.get_by_number("T-000002") == second
    assert store.tickets.get_by_number(1) == first
    assert (first.status, first.priority, first.conversation_id) == ("open", "normal", None)
    other = store.tickets.create("Elsewhere", workspace="acme")
    assert other.number == 1  # numbered per workspace


def test_ticket_takes_its_conversations_workspace(store: Store) -> None:
    conv = store.conversations.create(workspace="acme")
    ticket = store.tickets.create("Help", conversation_id=conv.id)
    assert ticket.workspace == "acme"
    assert store.tickets.get_by_number("T-1", workspace="acme") == ticket


def test_update_changes_fields_and_validates(store: Store) -> None:
    ticket = store.tickets.create("Refund", reason_code="refund")
    updated = store.tickets.update(
        ticket.id, status="pending", priority="urgent", assignee="alice", subject=" Refund! "
    )
    assert (updated.status, updated.priority, updated.assignee, updated.subject) == (
        "pending", "urgent", "alice", "Refund!"
    )
    assert updated.updated_at >= ticket.updated_at
    cleared = store.tickets.update(ticket.id, assignee=None, reason_code=None)
    assert (cleared.assignee, cleared.reason_code, cleared.status) == (None, None, "pending")
    with pytest.raises(ValidationError, match="status must be one of open, pending"):
        store.tickets.update(ticket.id, status="done")
    with pytest.raises(ValidationError, match="priority must be one of"):
        store.tickets.update(ticket.id, priority="asap")
    with pytest.raises(ValidationError, match="subject"):
        store.tickets.create("   ")
    with pytest.raises(ValidationError):
        store.tickets.create("x", priority="p1")
    assert store.tickets.get(ticket.id).status == "pending"


def test_unknown_ids_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.tickets.get("nope")
    with pytest.raises(NotFoundError):
        store.tickets.update("nope", status="closed")
    with pytest.raises(NotFoundError):
        store.tickets.get_by_number("T-000999")
    with pytest.raises(NotFoundError, match="no conversation"):
        store.tickets.create("x", conversation_id="nope")
    with pytest.raises(NotFoundError):
        store.tickets.escalate("nope", subject="x")
    with pytest.raises(ValidationError, match="not a ticket number"):
        store.tickets.get_by_number("ticket seven")


def test_escalation_updates_the_open_ticket(store: Store) -> None:
    conv = store.conversations.create()
    assert store.tickets.open_for_conversation(conv.id) is None
    ticket, created = store.tickets.escalate(
        conv.id, subject="Refund", description="asked twice", reason_code="low_confidence"
    )
    assert created and store.conversations.get(conv.id).status == "escalated"
    again, created_again = store.tickets.escalate(
        conv.id, subject="Refund", description="now angry", reason_code="negative_sentiment",
        priority="high",
    )
    assert not created_again and again.id == ticket.id
    assert again.reason_code == "negative_sentiment" and again.priority == "high"
    assert again.description == "asked twice\n\nnow angry"
    lower, _ = store.tickets.escalate(conv.id, subject="Refund", priority="low")
    assert lower.priority == "high"  # never lowered by a later escalation
    assert store.tickets.open_for_conversation(conv.id) == lower
    assert len(store.tickets.find(conversation_id=conv.id)) == 1


def test_one_open_ticket_per_conversation(store: Store) -> None:
    conv = store.conversations.create()
    first = store.tickets.create("First", conversation_id=conv.id)
    with pytest.raises(ValidationError, match="already has open ticket T-000001"):
        store.tickets.create("Second", conversation_id=conv.id)
    store.tickets.update(first.id, status="solved")
    second = store.tickets.create("Second", conversation_id=conv.id)
    assert store.tickets.open_for_conversation(conv.id) == second
    with pytest.raises(ValidationError, match="cannot be reopened"):
        store.tickets.update(first.id, status="open")
    assert store.tickets.get(first.id).status == "solved"
    store.tickets.update(second.id, status="closed")
    assert store.tickets.update(first.id, status="pending").status == "pending"


def test_find_filters(store: Store) -> None:
    a = store.tickets.create("A", assignee="alice")
    b = store.tickets.create("B")
    store.tickets.update(b.id, status="solved")
    assert [t.id for t in store.tickets.find()] == [b.id, a.id]
    assert [t.id for t in store.tickets.find(status="open")] == [a.id]
    assert [t.id for t in store.tickets.find(assignee="alice")] == [a.id]
    assert [t.id for t in store.tickets.find(limit=1, offset=1)] == [a.id]
    with pytest.raises(ValidationError):
        store.tickets.find(status="whatever")
