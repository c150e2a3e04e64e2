"""Feedback: CSAT and resolution answers per conversation."""

from __future__ import annotations

import pytest

from app.errors import NotFoundError, ValidationError
from app.store import Store


def test_record_and_read_back(store: Store) -> None:
    conv = store.conversations.create()
    first = store.feedback.record(conv.id, csat=2, resolved=False)
    second = store.feedback.record(conv.id, csat=5, resolved=True, comment="Danke! 👍")
    assert store.feedback.for_conversation(conv.id) == [first, second]
    assert (second.csat, second.resolved, second.comment) == (5, True, "Danke! 👍")
    assert store.feedback.record(conv.id, comment="just a note").csat is None


@pytest.mark.parametrize("kwargs", [
    {}, {"csat": 0}, {"csat": 6}, {"csat": True}, {"resolved": "yes"}, {"comment": "x" * 10_001},
])
def test_invalid_feedback_is_refused(store: Store, kwargs: dict[str, object]) -> None:
    conv = store.conversations.create()
    with pytest.raises(ValidationError):
        store.feedback.record(conv.id, **kwargs)  # type: ignore[arg-type]
    assert store.feedback.for_conversation(conv.id) == []


def test_unknown_conversation(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.feedback.record("nope", csat=3)
