"""What one past conversation record becomes in the store: pure functions, no I/O.

Times come from a generator seeded with the conversation id (so a replay is deterministic and an
interrupted one can be finished where it stopped): chat replies come in seconds, customers write
back within minutes and agents within the hour, e-mail is slower.
"""

from __future__ import annotations

import hashlib
import math
import random
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.domain import (
    Citation,
    ConversationStatus,
    Decision,
    Priority,
    Reason,
    Reply,
    Role,
    TicketStatus,
)
from app.responder.escalation import PRIORITY, find_human_request, find_sensitive_topic
from app.responder.sentiment import score as sentiment_score
from app.responder.sentiment import trend_of_texts
from app.store.base import as_utc
from pipelines.conversations import is_escalated

# (low, high) seconds before a message, by its author, for chat channels and for e-mail.
GAPS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    Role.ASSISTANT: ((2.0, 12.0), (15.0, 90.0)),
    Role.CUSTOMER: ((20.0, 300.0), (1200.0, 6 * 3600.0)),
    Role.AGENT: ((180.0, 2700.0), (1800.0, 8 * 3600.0)),
}
SLOW_CHANNELS = frozenset({"email"})
FINAL_STATUS = {"resolved": ConversationStatus.RESOLVED, "abandoned": ConversationStatus.CLOSED}
TICKET_STATUS = {"resolved": TicketStatus.SOLVED, "abandoned": TicketStatus.CLOSED}


@dataclass(frozen=True)
class PlannedMessage:
    """One message to store."""

    role: str
    body: str
    at: datetime
    reply: Reply | None = None
    sentiment: float | None = None


@dataclass(frozen=True)
class PlannedTicket:
    """The hand-off: opened at ``at``."""

    subject: str
    description: str
    reason: str | None
    priority: str
    at: datetime


@dataclass(frozen=True)
class Outcome:
    """How the record ends: its feedback, the conversation's and the ticket's last status."""

    csat: int | None
    resolved: bool | None
    feedback_at: datetime
    status: str
    ticket_status: str


@dataclass(frozen=True)
class Plan:
    """Everything a replayed record becomes in the store."""

    messages: list[PlannedMessage]
    ticket: PlannedTicket | None
    outcome: Outcome


def _rng(record: Mapping[str, Any]) -> random.Random:
    digest = hashlib.sha256(str(record["conversation_id"]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def created_at(record: Mapping[str, Any]) -> datetime:
    """The record's ``created_at`` as aware UTC."""
    return as_utc(datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00")))


def timeline(record: Mapping[str, Any]) -> list[datetime]:
    """When each recorded turn was sent: the first at ``created_at``, then log-uniform gaps
    drawn from ``GAPS`` by author and channel, seeded with the conversation id."""
    rng = _rng(record)
    slow = record.get("channel") in SLOW_CHANNELS
    at = created_at(record)
    times = []
    for i, turn in enumerate(record["turns"]):
        if i:
            lo, hi = GAPS.get(turn["role"], GAPS[Role.CUSTOMER])[slow]
            at += timedelta(seconds=math.exp(rng.uniform(math.log(lo), math.log(hi))))
        times.append(at)
    return times


def escalation_reason(customer_texts: Sequence[str]) -> Reason:
    """Why the assistant handed off, by the escalation rules' detectors, oldest message first:
    a sensitive topic or a hand-off request, else frustration, else ``model_requested``."""
    for text in customer_texts:
        topic = find_sensitive_topic(text)
        if topic:
            return topic[0]
        if find_human_request(text):
            return Reason.EXPLICIT_REQUEST
    if customer_texts and trend_of_texts(customer_texts).frustrated:
        return Reason.NEGATIVE_SENTIMENT
    return Reason.MODEL_REQUESTED


def final_status(record: Mapping[str, Any]) -> str:
    """The stored conversation's last status: resolved, closed, escalated or open."""
    if record.get("status") in FINAL_STATUS:
        return FINAL_STATUS[record["status"]]
    return ConversationStatus.ESCALATED if is_escalated(record) else ConversationStatus.OPEN


def outcome(record: Mapping[str, Any], last_message_at: datetime) -> Outcome:
    """The record's CSAT and resolution as feedback (given minutes after the last message) and
    the statuses it ends in."""
    csat = record.get("csat")
    feedback_at = last_message_at + timedelta(seconds=_rng(record).uniform(30, 900))
    return Outcome(csat=None if csat is None else int(csat),
                   resolved=True if record.get("status") == "resolved" else None,
                   feedback_at=feedback_at, status=final_status(record),
                   ticket_status=TICKET_STATUS.get(str(record.get("status")), TicketStatus.OPEN))


def plan_ticket(record: Mapping[str, Any], customer_texts: Sequence[str], reason: str | None,
                priority: str, at: datetime) -> PlannedTicket:
    """The hand-off's ticket: the first customer message as subject, the last in the
    description."""
    first = customer_texts[0] if customer_texts else str(record["conversation_id"])
    last = customer_texts[-1] if customer_texts else first
    return PlannedTicket(
        subject=textwrap.shorten(" ".join(first.split()), 80, placeholder="…"),
        description=f"Escalated by the assistant ({reason or 'unspecified'}): {last}",
        reason=reason, priority=priority, at=at)


def _handoff_index(turns: Sequence[Mapping[str, Any]]) -> int | None:
    """The last assistant turn before the first agent turn (or the last one, with no agent)."""
    roles = [t["role"] for t in turns]
    end = roles.index(Role.AGENT) if Role.AGENT in roles else len(roles)
    return next((i for i in range(end - 1, -1, -1) if roles[i] == Role.ASSISTANT), None)


def plan_replay(record: Mapping[str, Any], variant: str) -> Plan:
    """The record's recorded turns as stored messages (no model involved).

    An escalated record (``pipelines.conversations.is_escalated``) has its last assistant turn
    before the agent joins stored as an ``escalate`` reply, the reason found by the escalation
    rules' own detectors, and the ticket opened there."""
    turns = record["turns"]
    times = timeline(record)
    handoff = _handoff_index(turns) if is_escalated(record) else None
    messages: list[PlannedMessage] = []
    customer_texts: list[str] = []
    ticket = None
    for i, (turn, at) in enumerate(zip(turns, times, strict=True)):
        role, text = turn["role"], str(turn["text"])
        if role == Role.CUSTOMER:
            customer_texts.append(text)
            messages.append(PlannedMessage(role, text, at, sentiment=sentiment_score(text)))
            continue
        reply = None
        if role == Role.ASSISTANT:
            escalates = i == handoff
            reason = escalation_reason(customer_texts) if escalates else None
            reply = Reply(
                text, decision=Decision.ESCALATE if escalates else Decision.ANSWER,
                reason=reason, priority=PRIORITY[reason] if reason else Priority.NORMAL,
                citations=[] if escalates else [Citation(str(a)) for a in
                                                record.get("article_ids") or []],
                latency_ms=(at - times[i - 1]).total_seconds() * 1000 if i else 0.0,
                provider="replay", model="recorded", variant=variant)
            if reason is not None:
                ticket = plan_ticket(record, customer_texts, reason, PRIORITY[reason], at)
        elif ticket is None and is_escalated(record):  # an agent joined with no hand-off turn
            ticket = plan_ticket(record, customer_texts, None, Priority.NORMAL, at)
        messages.append(PlannedMessage(role, text, at, reply=reply))
    last = max((m.at for m in messages), default=created_at(record))
    return Plan(messages, ticket, outcome(record, last))
