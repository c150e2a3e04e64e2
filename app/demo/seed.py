"""Writing past conversation records into the store, as the live service would have written them.

Idempotent: each conversation carries ``metadata["source_id"]``; one already stored is skipped,
and one cut off by an interruption is finished where it stopped (the replay is deterministic).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.demo.plan import (
    Outcome,
    PlannedMessage,
    PlannedTicket,
    created_at,
    final_status,
    outcome,
    plan_replay,
    plan_ticket,
    timeline,
)
from app.domain import DEFAULT_WORKSPACE, Priority, Role
from app.responder.variants import Variant, VariantConfig, assign, load_variants
from app.store import ConversationRecord, Store
from pipelines.conversations import CONVERSATIONS_DIR, is_escalated, load_conversations

if TYPE_CHECKING:
    from app.services.conversations import ConversationService

SOURCE_KEY = "source_id"
_PAGE = 500


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


def seed_store(store: Store, conversations_dir: Path | str = CONVERSATIONS_DIR,
               service: ConversationService | None = None, *,
               variants: VariantConfig | None = None,
               workspace: str = DEFAULT_WORKSPACE) -> SeedReport:
    """Replay the past conversations in ``conversations_dir`` into ``store`` (see ``app.demo``).

    Args:
        store: where to write.
        conversations_dir: ``*.jsonl`` conversation records (or one such file).
        service: the turn policy (``app.container.build(settings).conversations``, writing to
            ``store``) to answer each customer turn; ``None`` replays the recorded replies.
        variants: the experiment to assign variants from (default: the service's, else
            ``knowledge/variants.yaml``).
        workspace: the workspace the conversations belong to.

    Returns:
        A ``SeedReport``; running it again creates nothing new.
    """
    if service is not None and service.store is not store:
        raise ValueError("the service writes to its own store: pass service.store as store")
    config = variants or (service.variants if service is not None else load_variants())
    present = existing_conversations(store, workspace)
    report = SeedReport()
    for record in load_conversations([Path(conversations_dir)]):
        source = str(record["conversation_id"])
        conv = present.get(source)
        if conv is not None and _complete(store, conv, record, service is not None):
            report.skipped += 1
            continue
        if conv is None:
            conv = _start(store, service, record, config, workspace)
            report.created += 1
            report.variants[str(conv.variant)] += 1
        else:
            report.resumed += 1
        resume = source in present
        if service is None:
            plan = plan_replay(record, _variant(config, workspace, source, conv.variant).name)
            _append(store, conv, plan.messages, report, resume)
            _finish(store, conv, plan.ticket, plan.outcome, report)
        else:
            ticket, last = _converse(service, conv, record, report, resume)
            _finish(store, conv, ticket, outcome(record, last), report)
    return report


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
    """Finished: the status (set last) is the record's final one, every turn is stored (with
    generated replies: the record's customer and agent turns) and so is the feedback."""
    if conv.status != final_status(record):
        return False
    stored = store.messages.for_conversation(conv.id)
    if generated:
        have = sum(m.role != Role.ASSISTANT for m in stored)
        want = sum(t["role"] != Role.ASSISTANT for t in record["turns"])
    else:
        have, want = len(stored), len(record["turns"])
    if have < want:
        return False
    rated = record.get("csat") is not None or record.get("status") == "resolved"
    return not rated or bool(store.feedback.for_conversation(conv.id))


def _variant(config: VariantConfig, workspace: str, user_id: str,
             stored: str | None) -> Variant:
    """The stored variant, or (when the config no longer has it) the assigned one."""
    return config.get(stored) if stored in config.names else assign(config, workspace, user_id)


def _start(store: Store, service: ConversationService | None, record: Mapping[str, Any],
           config: VariantConfig, workspace: str) -> ConversationRecord:
    """Create the conversation at the record's time with the customer's sticky variant (the
    rule for a customer identified by the record's conversation id), as the service does."""
    source = str(record["conversation_id"])
    channel, at = str(record["channel"]), created_at(record)
    metadata = {SOURCE_KEY: source, "tier": record.get("tier"),
                "tags": list(record.get("tags") or [])}
    if service is not None:
        conv, _ = service.start(source, channel, workspace=workspace, metadata=metadata, at=at)
        return conv
    sticky = store.variants.assign(source, config.experiment,
                                   assign(config, workspace, source).name, workspace=workspace)
    return store.conversations.create(
        workspace=workspace, user_id=source, channel=channel,
        variant=_variant(config, workspace, source, sticky.variant).name,
        experiment=config.experiment, at=at, metadata=metadata)


def _append(store: Store, conv: ConversationRecord, messages: list[PlannedMessage],
            report: SeedReport, resume: bool) -> None:
    """Store the planned messages the conversation lacks (all of them, unless resuming)."""
    stored = len(store.messages.for_conversation(conv.id)) if resume else 0
    for m in messages[stored:]:
        store.messages.append(conv.id, m.role, m.body, reply=m.reply, sentiment=m.sentiment,
                              at=m.at)
        report.messages += 1


def _converse(service: ConversationService, conv: ConversationRecord,
              record: Mapping[str, Any], report: SeedReport,
              resume: bool) -> tuple[PlannedTicket | None, datetime]:
    """The record's customer and agent turns at their planned times, each customer turn answered
    through the turn policy (``ConversationService.post``), which stores the reply and opens a
    ticket when it escalates; the recorded assistant turns are left out.

    Returns the ticket to open if no reply escalated (an escalated record's agent joins) and
    when the last message was stored. Resuming skips the turns already stored; a customer
    message whose reply was cut off stays unanswered, as it would in the live service."""
    store = service.store
    stored = store.messages.for_conversation(conv.id) if resume else []
    done = sum(m.role != Role.ASSISTANT for m in stored)
    known = {t.id for t in store.tickets.find(conversation_id=conv.id)} if resume else set()
    last = max([created_at(record), *(m.created_at for m in stored)])
    own = [(t, at) for t, at in zip(record["turns"], timeline(record), strict=True)
           if t["role"] != Role.ASSISTANT]
    texts: list[str] = []
    agent_ticket = None
    for n, (turn, at) in enumerate(own):
        role, text = turn["role"], str(turn["text"])
        if role == Role.CUSTOMER:
            texts.append(text)
        elif agent_ticket is None and is_escalated(record):
            agent_ticket = plan_ticket(record, texts, None, Priority.NORMAL, at)
        if n < done:
            continue
        if role == Role.CUSTOMER:
            result = service.post(conv.id, text, at=at)
            report.messages += 2
            last = max(last, result.reply_message.created_at)
            if result.ticket is not None and result.ticket.id not in known:
                known.add(result.ticket.id)
                report.tickets += 1
        else:
            last = max(last, store.messages.append(conv.id, role, text, at=at).created_at)
            report.messages += 1
    return agent_ticket, last


def _finish(store: Store, conv: ConversationRecord, planned: PlannedTicket | None,
            end: Outcome, report: SeedReport) -> None:
    """Feedback, the ticket (opened unless one is), then the final status: last, so it marks
    the replay finished."""
    if (end.csat is not None or end.resolved is not None) and \
            not store.feedback.for_conversation(conv.id):
        store.feedback.record(conv.id, csat=end.csat, resolved=end.resolved, at=end.feedback_at)
        report.feedback += 1
    tickets = store.tickets.find(conversation_id=conv.id, limit=1)
    ticket = tickets[0] if tickets else None
    if ticket is None and planned is not None:
        ticket, _ = store.tickets.escalate(conv.id, subject=planned.subject,
                                           description=planned.description,
                                           reason_code=planned.reason,
                                           priority=planned.priority, at=planned.at)
        report.tickets += 1
    if ticket is not None and ticket.status != end.ticket_status:
        store.tickets.update(ticket.id, status=end.ticket_status)
    store.conversations.set_status(conv.id, end.status)
