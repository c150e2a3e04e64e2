"""The analytics queries over a small hand-built dataset, with hand-computed expectations.

Cohort [T0, T0+48h), return window 24 h, as of T0+60h:

    conv  user  variant ch     created  first reply  escalated          latest feedback
    c0    u1    a       web    -1h      -            -                  (before the range)
    c1    u1    a       web    0h       10 s         no                 resolved, csat 5
    c2    u1    a       web    20h      30 s         billing (reply+ticket)  unresolved, csat 2
    c3    u2    a       sms    2h       20 s         no                 resolved, csat 4
    c4    u3    b       web    3h       40 s         no                 csat 3
    c5    -     b       email  5h       none         status only        -
    c6    u2    b       web    32h      60 s         low_confidence     -
    c7    u4    a       web    47h      5 s          no                 resolved (window open)
    c9    -     None    api    10h      no messages  no                 -
    c8    u4    a       web    49h      (after the range; makes c7 a return)
    c10   u5    b       web    48h      (exactly at the end: excluded)

Returned within 24 h: c1 (c2 at +20h) and c7 (c8 at +2h); c3's user came back after 30 h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.domain import Citation, Reply
from app.errors import ValidationError
from app.store import Store, summarize, summarize_by_variant
from app.store.analytics import ReasonCount, VariantChannelTotal

T0 = datetime(2025, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
S = timedelta(seconds=1)
END = T0 + 48 * H
AS_OF = T0 + 60 * H


@dataclass
class Dataset:
    store: Store
    ids: dict[str, str]


def conversation(
    store: Store, user: str | None, variant: str | None, channel: str, at: datetime,
    replies: list[tuple[timedelta, Reply]] = (),  # type: ignore[assignment]
    customer: bool = True,
) -> str:
    conv = store.conversations.create(user_id=user, variant=variant, channel=channel, at=at)
    if customer:
        store.messages.append(conv.id, "customer", "question", at=at)
    for after, meta in replies:
        store.messages.append(conv.id, "assistant", "reply", reply=meta, at=at + after)
    return conv.id


ANSWER = Reply("", decision="answer", citations=[Citation("kb1")])


@pytest.fixture
def data(store: Store) -> Dataset:
    s = store
    ids = {
        "c0": conversation(s, "u1", "a", "web", T0 - H, [(5 * S, ANSWER)]),
        "c1": conversation(s, "u1", "a", "web", T0, [(10 * S, ANSWER)]),
        "c2": conversation(s, "u1", "a", "web", T0 + 20 * H, [
            (30 * S, Reply("", decision="escalate", reason="billing"))]),
        "c3": conversation(s, "u2", "a", "sms", T0 + 2 * H, [(20 * S, ANSWER)]),
        "c4": conversation(s, "u3", "b", "web", T0 + 3 * H, [
            (40 * S, Reply("", decision="clarify", reason="ambiguous"))]),
        "c5": conversation(s, None, "b", "email", T0 + 5 * H),
        "c6": conversation(s, "u2", "b", "web", T0 + 32 * H, [
            (60 * S, Reply("", decision="escalate", reason="low_confidence"))]),
        "c7": conversation(s, "u4", "a", "web", T0 + 47 * H, [(5 * S, ANSWER)]),
        "c8": conversation(s, "u4", "a", "web", T0 + 49 * H, [(5 * S, ANSWER)]),
        "c9": conversation(s, None, None, "api", T0 + 10 * H, customer=False),
        "c10": conversation(s, "u5", "b", "web", END, [(5 * S, ANSWER)]),
    }
    # c4: the customer answers the clarifying question and gets an answer.
    s.messages.append(ids["c4"], "customer", "more detail", at=T0 + 3 * H + 50 * S)
    s.messages.append(ids["c4"], "assistant", "answer", reply=ANSWER, at=T0 + 3 * H + 55 * S)
    s.tickets.escalate(ids["c2"], subject="Billing", reason_code="billing")
    s.conversations.set_status(ids["c5"], "escalated")
    fb = s.feedback.record
    fb(ids["c0"], csat=1, resolved=True, at=T0)
    fb(ids["c1"], csat=5, resolved=True, at=T0 + H)
    fb(ids["c2"], csat=2, at=T0 + 21 * H)
    fb(ids["c2"], resolved=False, at=T0 + 22 * H)
    fb(ids["c3"], csat=4, resolved=False, at=T0 + 3 * H)
    fb(ids["c3"], resolved=True, at=T0 + 4 * H)  # changed their mind: latest answer counts
    fb(ids["c4"], csat=3, at=T0 + 4 * H)
    fb(ids["c7"], resolved=True, at=T0 + 48 * H)
    return Dataset(store, ids)


def test_totals_per_variant_and_channel(data: Dataset) -> None:
    assert data.store.analytics.totals(T0, END) == [
        VariantChannelTotal(None, "api", 1, 0, 0),
        VariantChannelTotal("a", "sms", 1, 1, 1),
        VariantChannelTotal("a", "web", 3, 3, 3),
        VariantChannelTotal("b", "email", 1, 1, 0),
        VariantChannelTotal("b", "web", 2, 3, 3),
    ]


def test_escalations_by_reason(data: Dataset) -> None:
    assert data.store.analytics.escalations_by_reason(T0, END) == [
        ReasonCount("a", "billing", 1),  # the reply and the ticket agree: counted once
        ReasonCount("b", "low_confidence", 1),
    ]


def test_first_response_samples(data: Dataset) -> None:
    samples = {s.conversation_id: s for s in data.store.analytics.first_response_samples(T0, END)}
    ids = data.ids
    assert set(samples) == {ids[c] for c in ("c1", "c2", "c3", "c4", "c5", "c6", "c7")}
    assert samples[ids["c4"]].first_response_at == T0 + 3 * H + 40 * S
    assert samples[ids["c5"]].first_response_at is None
    assert samples[ids["c1"]].first_customer_at == T0


def test_returned_within_window(data: Dataset) -> None:
    ids = data.ids
    assert data.store.analytics.returned_within(T0, END) == {ids["c1"], ids["c7"]}
    wide = data.store.analytics.returned_within(T0, END, window=48 * H)
    assert wide == {ids["c1"], ids["c3"], ids["c7"]}


def test_rates_per_variant_by_hand(data: Dataset) -> None:
    outcomes = data.store.analytics.outcomes(T0, END, as_of=AS_OF)
    by_id = {o.conversation_id: o for o in outcomes}
    assert set(by_id) == {data.ids[c] for c in ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c9")}
    report = summarize_by_variant(outcomes)

    a = report["a"]  # c1, c2, c3, c7
    assert (a.conversations, a.escalated, a.escalation_rate) == (4, 1, 0.25)
    assert (a.hard_resolved, a.hard_resolution_rate) == (3, 0.75)  # c1, c3, c7
    # c7's window is still open at AS_OF; of c1-c3 only c3 neither escalated nor returned.
    assert (a.soft_eligible, a.soft_resolved) == (3, 1)
    assert a.soft_resolution_rate == pytest.approx(1 / 3)
    assert a.csat_average == pytest.approx((5 + 2 + 4) / 3)
    assert a.first_response_p50_s == pytest.approx(15.0)  # [5, 10, 20, 30]
    assert a.first_response_p95_s == pytest.approx(28.5)

    b = report["b"]  # c4, c5, c6
    assert (b.escalated, b.escalation_rate) == (2, pytest.approx(2 / 3))
    assert (b.hard_resolved, b.hard_resolution_rate) == (0, 0.0)
    assert (b.soft_eligible, b.soft_resolved) == (3, 1)  # c4
    assert (b.csat_responses, b.csat_average) == (1, 3.0)
    assert (b.first_response_p50_s, b.first_response_p95_s) == (50.0, pytest.approx(59.0))

    none = report[None]  # c9: no messages: counted, but nothing to resolve
    assert (none.conversations, none.escalated) == (1, 0)
    assert (none.soft_eligible, none.soft_resolved) == (0, 0)
    assert math.isnan(none.soft_resolution_rate)
    assert math.isnan(none.csat_average) and math.isnan(none.first_response_p50_s)

    overall = summarize(outcomes)
    assert overall.escalation_rate == pytest.approx(3 / 8)
    assert overall.hard_resolution_rate == pytest.approx(3 / 8)
    # c9 (no customer message) is not eligible: an unused conversation is no AI resolution
    assert (overall.soft_eligible, overall.soft_resolved) == (6, 2)  # c3, c4
    assert overall.csat_average == pytest.approx(3.5)
    assert overall.first_response_p50_s == pytest.approx(25.0)  # [5, 10, 20, 30, 40, 60]
    assert overall.first_response_p95_s == pytest.approx(55.0)


def test_date_range_filtering(data: Dataset) -> None:
    analytics = data.store.analytics
    start, end = T0 + 12 * H, T0 + 36 * H  # c2 and c6
    assert analytics.totals(start, end) == [
        VariantChannelTotal("a", "web", 1, 1, 1),
        VariantChannelTotal("b", "web", 1, 1, 1),
    ]
    assert {o.conversation_id for o in analytics.outcomes(start, end, as_of=AS_OF)} == {
        data.ids["c2"], data.ids["c6"]
    }
    assert len(analytics.escalations_by_reason(start, end)) == 2
    assert analytics.returned_within(start, end) == set()
    # Naive datetimes are UTC; an empty range is refused.
    naive = analytics.totals(start.replace(tzinfo=None), end.replace(tzinfo=None))
    assert naive == analytics.totals(start, end)
    assert analytics.totals(END + 2 * H, END + 3 * H) == []  # after c8
    with pytest.raises(ValidationError, match="date range is empty"):
        analytics.totals(end, start)


def test_workspace_filter(data: Dataset) -> None:
    other = data.store.conversations.create(workspace="acme", user_id="u1", at=T0 + H)
    assert {o.conversation_id for o in data.store.analytics.outcomes(
        T0, END, workspace="acme", as_of=AS_OF)} == {other.id}
    assert len(data.store.analytics.outcomes(T0, END, workspace="default")) == 8
