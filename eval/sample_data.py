"""Realistic live data for the notebooks and demos: past conversations replayed into the store.

``seed_store`` turns each record of ``knowledge/conversations/*.jsonl`` into one stored
conversation, written as the live service would have written it:

- the conversation keeps the record's channel and ``created_at`` (and its tier and tags in the
  metadata); its variant is ``app.responder.variants.assign`` on the record's conversation id
  (the rule for anonymous customers), remembered as a sticky assignment like the service does;
- messages keep the recorded roles and texts, timestamped by a generator seeded with the
  conversation id: chat replies come in seconds, customers write back within minutes and agents
  within the hour, e-mail is slower; so first-response times and daily volumes look real;
- an escalated record (resolved by an agent, or tier 2: the definition ``eval.metrics.csat``
  uses) has its last assistant turn before the agent joins stored as an ``escalate`` reply, and
  a ticket opened there through ``store.tickets.escalate``; the reason comes from the escalation
  rules' own detectors (sensitive topic, hand-off request, frustration), else
  ``model_requested``;
- feedback carries the record's CSAT, and ``resolved=True`` when the record was resolved;
- the conversation ends in the record's state: resolved, closed (abandoned), escalated (an open
  ticket) or open.

With a ``responder`` the assistant's turns are generated instead (one reply per customer
message, stored with all the reply's details; the first escalating reply opens the ticket), so
the live figures reflect what each variant does. Without one no model is needed.

Idempotent: each conversation carries ``metadata["source_id"]``; one already stored is skipped,
and one cut off by an interruption is finished where it stopped (the replay is deterministic).
Seed the configured store with ``python -m eval.sample_data``.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.domain import Citation, Reason, Reply
from app.errors import SupportbotError, ValidationError
from app.responder.escalation import PRIORITY, find_human_request, find_sensitive_topic
from app.responder.sentiment import score as sentiment_score
from app.responder.sentiment import trend_of_texts
from app.responder.types import Turn
from app.responder.variants import Variant, VariantConfig, assign, load_variants
from app.store import ConversationRecord, Store
from app.store.base import as_utc
from app.store.choices import DEFAULT_WORKSPACE
from eval.metrics.csat import CONVERSATIONS_DIR, features_from_conversation, load_conversations

if TYPE_CHECKING:
    from app.config import Settings
    from app.responder.responder import Responder

SOURCE_KEY = "source_id"
_PAGE = 500
# (low, high) seconds before a message, by its author, for chat channels and for e-mail.
GAPS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "assistant": ((2.0, 12.0), (15.0, 90.0)),
    "customer": ((20.0, 300.0), (1200.0, 6 * 3600.0)),
    "agent": ((180.0, 2700.0), (1800.0, 8 * 3600.0)),
}
SLOW_CHANNELS = frozenset({"email"})
FINAL_STATUS = {"resolved": "resolved", "abandoned": "closed"}
TICKET_STATUS = {"resolved": "solved", "abandoned": "closed"}


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
    """The hand-off: opened at ``at``, left in ``status``."""

    subject: str
    description: str
    reason: str | None
    priority: str
    at: datetime
    status: str


@dataclass(frozen=True)
class Plan:
    """Everything one record becomes in the store."""

    messages: list[PlannedMessage]
    ticket: PlannedTicket | None
    csat: int | None
    resolved: bool | None
    feedback_at: datetime
    status: str


@dataclass
class SeedReport:
    """What ``seed_store`` did."""

    created: int = 0
    skipped: int = 0
    resumed: int = 0
    messages: int = 0
    tickets: int = 0
    feedback: int = 0
    variants: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        split = ", ".join(f"{v}: {n}" for v, n in sorted(self.variants.items())) or "none"
        return (f"{self.created} conversations created, {self.resumed} finished, "
                f"{self.skipped} already present; {self.messages} messages, {self.tickets} "
                f"tickets, {self.feedback} feedback; variants of new ones: {split}")


def _rng(record: Mapping[str, Any]) -> random.Random:
    digest = hashlib.sha256(str(record["conversation_id"]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def timeline(record: Mapping[str, Any]) -> list[datetime]:
    """When each recorded turn was sent: the first at ``created_at``, then log-uniform gaps
    drawn from ``GAPS`` by author and channel, seeded with the conversation id."""
    rng = _rng(record)
    slow = record.get("channel") in SLOW_CHANNELS
    at = created_at(record)
    times = []
    for i, turn in enumerate(record["turns"]):
        if i:
            lo, hi = GAPS.get(turn["role"], GAPS["customer"])[slow]
            at += timedelta(seconds=math.exp(rng.uniform(math.log(lo), math.log(hi))))
        times.append(at)
    return times


def created_at(record: Mapping[str, Any]) -> datetime:
    """The record's ``created_at`` as aware UTC."""
    return as_utc(datetime.fromisoformat(str(record["created_at"]).replace("Z", "+00:00")))


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
    return "escalated" if is_escalated(record) else "open"


def is_escalated(record: Mapping[str, Any]) -> bool:
    """Handed to a person, as the CSAT proxy counts it (agent-resolved or tier 2)."""
    return bool(features_from_conversation(record).escalated)


def _handoff_index(turns: Sequence[Mapping[str, Any]]) -> int | None:
    """The last assistant turn before the first agent turn (or the last one, with no agent)."""
    roles = [t["role"] for t in turns]
    end = roles.index("agent") if "agent" in roles else len(roles)
    return next((i for i in range(end - 1, -1, -1) if roles[i] == "assistant"), None)


def _ticket(record: Mapping[str, Any], customer_texts: Sequence[str], reason: str | None,
            priority: str, at: datetime) -> PlannedTicket:
    first = customer_texts[0] if customer_texts else str(record["conversation_id"])
    last = customer_texts[-1] if customer_texts else first
    return PlannedTicket(
        subject=textwrap.shorten(" ".join(first.split()), 80, placeholder="…"),
        description=f"Escalated by the assistant ({reason or 'unspecified'}): {last}",
        reason=reason, priority=priority, at=at,
        status=TICKET_STATUS.get(str(record.get("status")), "open"))


def _plan(record: Mapping[str, Any], messages: list[PlannedMessage],
          ticket: PlannedTicket | None) -> Plan:
    csat = record.get("csat")
    resolved = True if record.get("status") == "resolved" else None
    rng = _rng(record)
    last = max(m.at for m in messages) if messages else created_at(record)
    return Plan(messages=messages, ticket=ticket,
                csat=None if csat is None else int(csat), resolved=resolved,
                feedback_at=last + timedelta(seconds=rng.uniform(30, 900)),
                status=final_status(record))


def plan_replay(record: Mapping[str, Any], variant: str) -> Plan:
    """The record's recorded turns as stored messages (no model involved)."""
    turns = record["turns"]
    times = timeline(record)
    handoff = _handoff_index(turns) if is_escalated(record) else None
    messages: list[PlannedMessage] = []
    customer_texts: list[str] = []
    ticket = None
    for i, (turn, at) in enumerate(zip(turns, times, strict=True)):
        role, text = turn["role"], str(turn["text"])
        if role == "customer":
            customer_texts.append(text)
            messages.append(PlannedMessage(role, text, at, sentiment=sentiment_score(text)))
            continue
        reply = None
        if role == "assistant":
            escalates = i == handoff
            reason = escalation_reason(customer_texts) if escalates else None
            reply = Reply(
                text, decision="escalate" if escalates else "answer", reason=reason,
                priority=PRIORITY[reason] if reason else "normal",
                citations=[] if escalates else [Citation(str(a)) for a in
                                                record.get("article_ids") or []],
                latency_ms=(at - times[i - 1]).total_seconds() * 1000 if i else 0.0,
                provider="replay", model="recorded", variant=variant)
            if reason is not None:
                ticket = _ticket(record, customer_texts, reason, PRIORITY[reason], at)
        elif ticket is None and is_escalated(record):  # an agent joined with no hand-off turn
            ticket = _ticket(record, customer_texts, None, "normal", at)
        messages.append(PlannedMessage(role, text, at, reply=reply))
    return _plan(record, messages, ticket)


def plan_generated(record: Mapping[str, Any], variant: Variant, responder: Responder) -> Plan:
    """The record's customer (and agent) turns, each customer turn answered by ``responder``."""
    from app.responder.responder import TurnInput

    messages: list[PlannedMessage] = []
    history: list[Turn] = []
    customer_texts: list[str] = []
    clarified = False
    ticket = None
    for turn, at in zip(record["turns"], timeline(record), strict=True):
        role, text = turn["role"], str(turn["text"])
        if role == "assistant":
            continue  # the responder's reply stands in for the recorded one
        if role == "agent":
            if ticket is None and is_escalated(record):
                ticket = _ticket(record, customer_texts, None, "normal", at)
            messages.append(PlannedMessage(role, text, at))
            history.append(Turn("agent", text))
            continue
        customer_texts.append(text)
        messages.append(PlannedMessage(role, text, at, sentiment=sentiment_score(text)))
        reply = responder.respond(TurnInput(text, variant, list(history), clarified))
        reply_at = at + timedelta(milliseconds=max(reply.latency_ms, 1.0))
        messages.append(PlannedMessage("assistant", reply.text, reply_at, reply=reply))
        if reply.decision == "escalate" and ticket is None:
            ticket = _ticket(record, customer_texts, reply.reason, reply.priority, reply_at)
        clarified = clarified or reply.decision == "clarify"
        history += [Turn("customer", text), Turn("assistant", reply.text)]
    return _plan(record, messages, ticket)


def expected_messages(record: Mapping[str, Any], generated: bool) -> int:
    """How many messages a complete replay stores (one reply per customer turn if generated)."""
    roles = Counter(t["role"] for t in record["turns"])
    return sum(roles.values()) if not generated else 2 * roles["customer"] + roles["agent"]


def existing_conversations(store: Store, workspace: str) -> dict[str, ConversationRecord]:
    """Stored conversations by their ``source_id`` (seeded ones only)."""
    found: dict[str, ConversationRecord] = {}
    offset = 0
    while True:
        page = store.conversations.find(workspace=workspace, limit=_PAGE, offset=offset)
        for conv in page:
            source = conv.metadata.get(SOURCE_KEY)
            if source is not None:
                found[str(source)] = conv
        if len(page) < _PAGE:
            return found
        offset += _PAGE


def _complete(store: Store, conv: ConversationRecord, record: Mapping[str, Any],
              generated: bool) -> bool:
    """The status is set last, so it marks a finished replay, except for records that stay
    open; those are finished when every message is stored."""
    status = final_status(record)
    if conv.status != status:
        return False
    return status != "open" or len(store.messages.for_conversation(conv.id)) >= \
        expected_messages(record, generated)


def _write(store: Store, conv: ConversationRecord, plan: Plan, report: SeedReport,
           resume: bool) -> None:
    """Store what the plan holds and the conversation lacks (everything, unless resuming)."""
    stored = len(store.messages.for_conversation(conv.id)) if resume else 0
    for m in plan.messages[stored:]:
        store.messages.append(conv.id, m.role, m.body, reply=m.reply, sentiment=m.sentiment,
                              at=m.at)
        report.messages += 1
    has_feedback = resume and bool(store.feedback.for_conversation(conv.id))
    if (plan.csat is not None or plan.resolved is not None) and not has_feedback:
        store.feedback.record(conv.id, csat=plan.csat, resolved=plan.resolved,
                              at=plan.feedback_at)
        report.feedback += 1
    if plan.ticket is not None:
        tickets = store.tickets.find(conversation_id=conv.id, limit=1) if resume else []
        if tickets:
            ticket = tickets[0]
        else:
            t = plan.ticket
            ticket, _ = store.tickets.escalate(conv.id, subject=t.subject,
                                               description=t.description, reason_code=t.reason,
                                               priority=t.priority, at=t.at)
            report.tickets += 1
        if ticket.status != plan.ticket.status:
            store.tickets.update(ticket.id, status=plan.ticket.status)
    store.conversations.set_status(conv.id, plan.status)  # last: marks the replay finished


def _variant(config: VariantConfig, workspace: str, user_id: str,
             stored: str | None) -> Variant:
    """The stored variant, or (when the config no longer has it) the assigned one."""
    return config.get(stored) if stored in config.names else assign(config, workspace, user_id)


def _start(store: Store, record: Mapping[str, Any], config: VariantConfig,
           workspace: str) -> ConversationRecord:
    """Create the conversation with the customer's sticky variant, as the service does."""
    source = str(record["conversation_id"])
    sticky = store.variants.assign(source, config.experiment,
                                   assign(config, workspace, source).name, workspace=workspace)
    return store.conversations.create(
        workspace=workspace, user_id=source, channel=str(record["channel"]),
        variant=_variant(config, workspace, source, sticky.variant).name,
        experiment=config.experiment, at=created_at(record),
        metadata={SOURCE_KEY: source, "tier": record.get("tier"),
                  "tags": list(record.get("tags") or [])})


def seed_store(store: Store, conversations_dir: Path | str = CONVERSATIONS_DIR,
               responder: Responder | None = None, *, variants: VariantConfig | None = None,
               workspace: str = DEFAULT_WORKSPACE) -> SeedReport:
    """Replay the past conversations in ``conversations_dir`` into ``store`` (see the module doc).

    Args:
        store: where to write.
        conversations_dir: ``*.jsonl`` conversation records (or one such file).
        responder: generates the assistant's replies; ``None`` replays the recorded ones.
        variants: the experiment to assign variants from (default ``knowledge/variants.yaml``).
        workspace: the workspace the conversations belong to.

    Returns:
        A ``SeedReport``; running it again creates nothing new.
    """
    config = variants or load_variants()
    records = load_conversations([Path(conversations_dir)])
    present = existing_conversations(store, workspace)
    report = SeedReport()
    for record in records:
        source = str(record["conversation_id"])
        conv = present.get(source)
        if conv is not None and _complete(store, conv, record, responder is not None):
            report.skipped += 1
            continue
        if conv is None:
            conv = _start(store, record, config, workspace)
            report.created += 1
            report.variants[str(conv.variant)] += 1
        else:
            report.resumed += 1
        variant = _variant(config, workspace, source, conv.variant)
        plan = (plan_replay(record, variant.name) if responder is None
                else plan_generated(record, variant, responder))
        _write(store, conv, plan, report, resume=source in present)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Seed the configured store; print what was done."""
    from app.config import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m eval.sample_data",
        description="Replay past conversations into the configured store (SUPPORTBOT_DATA_DIR "
                    "or DATABASE_URL) so the analytics and A/B notebooks have live data.")
    parser.add_argument("--conversations", type=Path, default=CONVERSATIONS_DIR,
                        help="directory of *.jsonl conversation records")
    parser.add_argument("--respond", action="store_true",
                        help="generate the assistant's replies with the configured answer model "
                             "(run 'supportbot ingest knowledge/' first)")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        store = Store.from_settings(settings)
        try:
            with _responder(settings, args.respond) as responder:
                report = seed_store(store, args.conversations, responder,
                                    variants=load_variants(settings.variants_file),
                                    workspace=settings.workspace)
        finally:
            store.close()
    except SupportbotError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


@contextmanager
def _responder(settings: Settings, respond: bool) -> Iterator[Responder | None]:
    """The configured responder when asked for (closed after), else ``None``."""
    if not respond:
        yield None
        return
    from app.container import build
    from app.knowledge.base import KnowledgeBase

    kb = KnowledgeBase(settings)
    if not kb.manifest.counts().get("articles"):
        raise ValidationError(f"the knowledge base in {settings.data_dir} is empty: run "
                              "'supportbot ingest knowledge/' first, or seed without --respond")
    with build(settings, kb=kb) as engine:
        yield engine.responder


if __name__ == "__main__":
    sys.exit(main())
