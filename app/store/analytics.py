"""Support metrics as pure functions over rows the analytics queries return.

Definitions (a "cohort" is the conversations created in ``[start, end)``):

- **escalated**: the conversation's status is ``escalated``, or an assistant reply decided
  ``escalate``, or a ticket is linked to it.
- **AI resolution rate** (the headline) = conversations in which the customer wrote, that were
  not escalated and that the customer did not mark unresolved (latest feedback
  ``resolved=False``) / conversations in which the customer wrote. It counts a conversation as
  soon as it has been answered, so it is a number as soon as anyone has asked anything; the
  hard and soft rates below are the stricter views beside it.
- **hard AI resolution rate** = conversations whose latest feedback says ``resolved=True`` and
  that were not escalated / all conversations in the cohort.
- **soft AI resolution rate** = conversations not escalated whose user did not start another
  conversation within the window (default 24 h) of this one's start / conversations whose
  window has fully elapsed (``created_at + window <= as_of``) and in which the customer wrote
  something; younger ones are left out of numerator and denominator because a return may
  still come, and empty ones (opened, never used) because there was nothing to resolve.
- **escalation rate** = escalated conversations / all conversations.
- **CSAT average** = mean of the latest CSAT score of each conversation that has one.
- **first response time** = first assistant message after the first customer message, minus
  that customer message's time, per conversation; p50/p95 by linear interpolation between
  closest ranks (numpy's default).

Every rate or average over nothing is NaN, never 0: "no data" must not read as "0 %".
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_RETURN_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class VariantChannelTotal:
    """Counts for the conversations of one variant on one channel."""

    variant: str | None
    channel: str
    conversations: int
    customer_messages: int
    assistant_messages: int


@dataclass(frozen=True)
class ReasonCount:
    """How many conversations of a variant were escalated for one reason."""

    variant: str | None
    reason: str
    conversations: int


@dataclass(frozen=True)
class FirstResponseSample:
    """When the customer first wrote and when the assistant first answered (if it did)."""

    conversation_id: str
    variant: str | None
    channel: str
    first_customer_at: datetime
    first_response_at: datetime | None


@dataclass(frozen=True)
class ConversationStart:
    """Who started a conversation when (input to return detection)."""

    conversation_id: str
    workspace: str
    user_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class FeedbackRow:
    """One feedback row, in the order it was given."""

    conversation_id: str
    csat: int | None
    resolved: bool | None


@dataclass(frozen=True)
class ConversationOutcome:
    """Everything the rates need to know about one conversation."""

    conversation_id: str
    variant: str | None
    channel: str
    created_at: datetime
    escalated: bool
    resolved: bool | None  # latest feedback's answer
    csat: int | None  # latest CSAT score
    returned: bool  # user started another conversation within the window
    window_elapsed: bool  # created_at + window <= as_of
    first_response_s: float | None
    engaged: bool = True  # the customer wrote at least one message


@dataclass(frozen=True)
class Summary:
    """The headline metrics for a set of conversations (see the module docstring)."""

    conversations: int
    engaged: int
    ai_resolved: int
    ai_resolution_rate: float
    escalated: int
    escalation_rate: float
    hard_resolved: int
    hard_resolution_rate: float
    soft_eligible: int
    soft_resolved: int
    soft_resolution_rate: float
    csat_responses: int
    csat_average: float
    first_response_samples: int
    first_response_p50_s: float
    first_response_p95_s: float


def rate(numerator: int, denominator: int) -> float:
    """``numerator / denominator``, or NaN when the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating linearly between closest ranks.

    Same as ``numpy.percentile`` with the default method; NaN for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100; got {q}")
    xs = sorted(values)
    if not xs:
        return math.nan
    h = (len(xs) - 1) * q / 100
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def first_response_seconds(sample: FirstResponseSample) -> float | None:
    """Seconds from the first customer message to the first answer; None if unanswered."""
    if sample.first_response_at is None:
        return None
    return max(0.0, (sample.first_response_at - sample.first_customer_at).total_seconds())


def returned_conversations(
    starts: Iterable[ConversationStart], window: timedelta = DEFAULT_RETURN_WINDOW
) -> set[str]:
    """Ids of conversations whose user started another one in ``(created_at, created_at +
    window]``, same workspace. Anonymous conversations (no user id) never count as returned."""
    by_user: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    known = [s for s in starts if s.user_id is not None]
    for s in known:
        by_user[(s.workspace, s.user_id or "")].append(s.created_at)
    for times in by_user.values():
        times.sort()
    returned = set()
    for s in known:
        times = by_user[(s.workspace, s.user_id or "")]
        nxt = bisect.bisect_right(times, s.created_at)
        if nxt < len(times) and times[nxt] <= s.created_at + window:
            returned.add(s.conversation_id)
    return returned


def latest_verdicts(rows: Iterable[FeedbackRow]) -> dict[str, tuple[bool | None, int | None]]:
    """Per conversation, the latest non-null ``resolved`` and ``csat`` (rows oldest first)."""
    out: dict[str, tuple[bool | None, int | None]] = {}
    for row in rows:
        resolved, csat = out.get(row.conversation_id, (None, None))
        out[row.conversation_id] = (
            row.resolved if row.resolved is not None else resolved,
            row.csat if row.csat is not None else csat,
        )
    return out


def summarize(outcomes: Sequence[ConversationOutcome]) -> Summary:
    """The headline metrics over ``outcomes`` (see the module docstring for definitions)."""
    n = len(outcomes)
    escalated = sum(o.escalated for o in outcomes)
    hard = sum(o.resolved is True and not o.escalated for o in outcomes)
    engaged = [o for o in outcomes if o.engaged]
    ai_resolved = sum(not o.escalated and o.resolved is not False for o in engaged)
    eligible = [o for o in outcomes if o.window_elapsed and o.engaged]
    soft = sum(not o.escalated and not o.returned for o in eligible)
    scores = [o.csat for o in outcomes if o.csat is not None]
    frt = [o.first_response_s for o in outcomes if o.first_response_s is not None]
    return Summary(
        conversations=n,
        engaged=len(engaged),
        ai_resolved=ai_resolved,
        ai_resolution_rate=rate(ai_resolved, len(engaged)),
        escalated=escalated,
        escalation_rate=rate(escalated, n),
        hard_resolved=hard,
        hard_resolution_rate=rate(hard, n),
        soft_eligible=len(eligible),
        soft_resolved=soft,
        soft_resolution_rate=rate(soft, len(eligible)),
        csat_responses=len(scores),
        csat_average=sum(scores) / len(scores) if scores else math.nan,
        first_response_samples=len(frt),
        first_response_p50_s=percentile(frt, 50),
        first_response_p95_s=percentile(frt, 95),
    )


def summarize_by_variant(
    outcomes: Iterable[ConversationOutcome],
) -> dict[str | None, Summary]:
    """``summarize`` per variant (``None``: conversations served outside any experiment)."""
    groups: dict[str | None, list[ConversationOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.variant].append(o)
    return {variant: summarize(group) for variant, group in groups.items()}
