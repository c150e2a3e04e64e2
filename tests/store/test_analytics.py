"""The pure metric functions, on hand-made rows (no database)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.store.analytics import (
    ConversationOutcome,
    ConversationStart,
    FeedbackRow,
    FirstResponseSample,
    first_response_seconds,
    latest_verdicts,
    percentile,
    rate,
    returned_conversations,
    summarize,
    summarize_by_variant,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_rate_is_nan_over_nothing() -> None:
    assert rate(1, 4) == 0.25
    assert math.isnan(rate(0, 0))


def test_percentile_by_hand_and_against_numpy() -> None:
    assert percentile([30, 10, 20, 5], 50) == 15  # h = 1.5 -> 10 + 0.5 * (20 - 10)
    assert percentile([30, 10, 20, 5], 95) == pytest.approx(28.5)  # h = 2.85
    assert percentile([7], 95) == 7
    assert math.isnan(percentile([], 50))
    rng = random.Random(7)
    values = [rng.uniform(0, 100) for _ in range(37)]
    for q in (0, 5, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_first_response_seconds() -> None:
    sample = FirstResponseSample("c", "a", "web", T0, T0 + timedelta(seconds=12.5))
    assert first_response_seconds(sample) == 12.5
    assert first_response_seconds(FirstResponseSample("c", "a", "web", T0, None)) is None


def test_returned_conversations() -> None:
    starts = [
        ConversationStart("a1", "default", "alice", T0),
        ConversationStart("a2", "default", "alice", T0 + 24 * H),  # exactly at the window edge
        ConversationStart("a3", "default", "alice", T0 + 49 * H),  # 25 h after a2
        ConversationStart("b1", "default", "bob", T0),
        ConversationStart("b2", "acme", "bob", T0 + H),  # another workspace: another person
        ConversationStart("x1", "default", None, T0),
        ConversationStart("x2", "default", None, T0 + H),  # anonymous never "returns"
    ]
    assert returned_conversations(starts, 24 * H) == {"a1"}
    assert returned_conversations(starts, 25 * H) == {"a1", "a2"}


def test_latest_verdicts_keep_the_latest_non_null_answers() -> None:
    rows = [
        FeedbackRow("c1", 2, False),
        FeedbackRow("c1", None, True),
        FeedbackRow("c2", 4, None),
    ]
    assert latest_verdicts(rows) == {"c1": (True, 2), "c2": (None, 4)}


def outcome(cid: str, variant: str | None = "a", **kw: object) -> ConversationOutcome:
    fields: dict[str, object] = dict(
        conversation_id=cid, variant=variant, channel="web", created_at=T0, escalated=False,
        resolved=None, csat=None, returned=False, window_elapsed=True, first_response_s=None,
    )
    fields.update(kw)
    return ConversationOutcome(**fields)  # type: ignore[arg-type]


def test_summarize_by_hand() -> None:
    outcomes = [
        outcome("1", resolved=True, csat=5, first_response_s=10.0),
        outcome("2", escalated=True, resolved=True, csat=1, first_response_s=30.0),
        outcome("3", returned=True, first_response_s=20.0),
        outcome("4", window_elapsed=False, resolved=True),
        outcome("5", variant="b", escalated=True),
        outcome("6", resolved=False),
        outcome("7", engaged=False),
    ]
    s = summarize(outcomes)
    assert (s.conversations, s.escalated, s.escalation_rate) == (7, 2, 2 / 7)
    # Headline: engaged 1-6; not escalated and not marked unresolved -> 1, 3, 4.
    assert (s.engaged, s.ai_resolved, s.ai_resolution_rate) == (6, 3, 0.5)
    # Hard: resolved=True and not escalated -> "1" and "4" (the escalated "2" does not count).
    assert (s.hard_resolved, s.hard_resolution_rate) == (2, 2 / 7)
    # Soft: eligible 1, 2, 3, 5, 6; not escalated and not returned -> "1" and "6".
    assert (s.soft_eligible, s.soft_resolved, s.soft_resolution_rate) == (5, 2, 0.4)
    assert (s.csat_responses, s.csat_average) == (2, 3.0)
    assert (s.first_response_samples, s.first_response_p50_s) == (3, 20.0)
    assert s.first_response_p95_s == pytest.approx(29.0)  # h = 1.9 -> 20 + 0.9 * 10
    by_variant = summarize_by_variant(outcomes)
    assert set(by_variant) == {"a", "b"}
    assert by_variant["b"].escalation_rate == 1.0
    assert math.isnan(by_variant["b"].csat_average)


def test_summarize_nothing_is_all_nan() -> None:
    s = summarize([])
    assert s.conversations == 0
    for value in (s.escalation_rate, s.ai_resolution_rate, s.hard_resolution_rate,
                  s.soft_resolution_rate,
                  s.csat_average, s.first_response_p50_s, s.first_response_p95_s):
        assert math.isnan(value)
