"""The demo seeder (``app.demo``): past conversations replayed into a store as the live service
would have written them, idempotently, and with generated replies through the turn policy."""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.container import build
from app.demo import SOURCE_KEY, seed_store
from app.demo.plan import created_at, timeline
from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH, assign, load_variants
from app.store import Store, summarize
from pipelines.conversations import is_escalated, load_conversations
from tests.conftest import KNOWLEDGE
from tests.store.conftest import BACKENDS, backend_settings, postgres_url  # noqa: F401 (fixture)

VARIANTS = ["control", "concise_empathetic"]
HISTORY = KNOWLEDGE / "conversations"
ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))


@pytest.fixture(scope="module")
def seeded_dir(make_settings: Callable[..., Settings],
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding every past conversation, replayed (the notebooks read it too)."""
    data_dir = tmp_path_factory.mktemp("seeded-store")
    seeded = Store.from_settings(make_settings(data_dir))
    try:
        report = seed_store(seeded, HISTORY)
    finally:
        seeded.close()
    assert report.created == len(load_conversations([HISTORY])), report.summary()
    return data_dir


def test_seeded_store_agrees_with_the_records(seeded_dir: Path,
                                              make_settings: Callable[..., Settings]) -> None:
    records = {r["conversation_id"]: r for r in load_conversations([HISTORY])}
    config = load_variants(DEFAULT_VARIANTS_PATH)
    seeded = Store.from_settings(make_settings(seeded_dir))
    try:
        convs = seeded.conversations.find(limit=500)
        outcomes = seeded.analytics.outcomes(*ALL_TIME)
    finally:
        seeded.close()

    assert sorted(c.metadata[SOURCE_KEY] for c in convs) == sorted(records)
    for conv in convs:
        record = records[conv.metadata[SOURCE_KEY]]
        assert conv.channel == record["channel"]
        assert conv.created_at == datetime.fromisoformat(record["created_at"])
        assert conv.variant == assign(config, "default", record["conversation_id"]).name
    summary = summarize(outcomes)
    by_id = {c.id: records[c.metadata[SOURCE_KEY]] for c in convs}
    assert summary.escalated == sum(is_escalated(r) for r in records.values())
    assert summary.hard_resolved == sum(r["resolution"] == "ai_resolved" for r in records.values())
    rated = [r["csat"] for r in records.values() if r["csat"] is not None]
    assert summary.csat_average == pytest.approx(sum(rated) / len(rated))
    assert all(o.first_response_s is not None and o.first_response_s > 0 for o in outcomes
               if any(t["role"] == "assistant" for t in by_id[o.conversation_id]["turns"]))
    assert set(Counter(o.variant for o in outcomes)) == set(VARIANTS)


class Interrupted(Exception):
    """Stands in for a crash or Ctrl-C during seeding."""


def sample_records(tmp_path: Path, per_outcome: int = 2) -> Path:
    """A JSONL file with the first past conversations of each (status, resolution, tier)."""
    taken: Counter[tuple[Any, ...]] = Counter()
    lines = []
    for record in load_conversations([HISTORY]):
        outcome = (record["status"], record["resolution"], record["tier"])
        if taken[outcome] < per_outcome:
            taken[outcome] += 1
            lines.append(json.dumps(record))
    path = tmp_path / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def snapshot(store: Store, workspace: str = "default") -> dict[str, Any]:
    """What the store holds per seeded conversation (ids and clock-stamped fields left out)."""
    out = {}
    for conv in store.conversations.find(workspace=workspace, limit=500):
        messages = [(m.role, m.body, m.created_at, m.reply.decision if m.reply else None)
                    for m in store.messages.for_conversation(conv.id)]
        feedback = [(f.csat, f.resolved, f.created_at)
                    for f in store.feedback.for_conversation(conv.id)]
        tickets = [(t.reason_code, t.priority, t.status, t.created_at)
                   for t in store.tickets.find(conversation_id=conv.id)]
        out[conv.metadata[SOURCE_KEY]] = (conv.status, conv.variant, messages, feedback, tickets)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_seed_store_is_idempotent_and_finishes_an_interrupted_replay(
        backend: str, request: pytest.FixtureRequest, make_settings: Callable[..., Settings],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = sample_records(tmp_path)
    workspace = f"seed-{uuid.uuid4().hex[:10]}"  # PostgreSQL is shared by the whole session
    n = len(load_conversations([records]))
    reference = Store.from_settings(make_settings(tmp_path / "reference"))
    try:
        first = seed_store(reference, records, workspace=workspace)
        again = seed_store(reference, records, workspace=workspace)
        expected = snapshot(reference, workspace)
    finally:
        reference.close()
    assert first.created == n and first.tickets > 0 and first.feedback > 0
    assert (again.created, again.skipped, again.messages) == (0, n, 0)

    store = Store.from_settings(backend_settings(request, backend, tmp_path / "store"))
    append = store.messages.append

    def cut_off(conversation_id: str, role: str, *args: Any, **kwargs: Any) -> Any:
        if role == "agent":  # mid-way through the first hand-off
            raise Interrupted
        return append(conversation_id, role, *args, **kwargs)

    monkeypatch.setattr(store.messages, "append", cut_off)
    try:
        with pytest.raises(Interrupted):
            seed_store(store, records, workspace=workspace)
        monkeypatch.undo()
        resumed = seed_store(store, records, workspace=workspace)
        got = snapshot(store, workspace)
    finally:
        store.close()

    assert resumed.resumed == 1 and resumed.skipped + resumed.resumed + resumed.created == n
    assert got == expected


def test_seed_store_through_the_turn_policy_stores_generated_replies(
        sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
        tmp_path: Path) -> None:
    seeded = Store.from_settings(make_settings(tmp_path / "store"))
    try:
        with build(sample_kb.settings, kb=sample_kb, store=seeded) as engine:
            report = seed_store(seeded, sample_records(tmp_path, per_outcome=1),
                                engine.conversations)
        convs = seeded.conversations.find()
        messages = {c.id: seeded.messages.for_conversation(c.id) for c in convs}
    finally:
        seeded.close()

    assert report.created == len(convs) == 5
    for conv in convs:
        roles = [m.role for m in messages[conv.id]]
        replies = [m.reply for m in messages[conv.id] if m.role == "assistant"]
        assert roles.count("assistant") == roles.count("customer")
        assert all(r is not None and r.provider != "replay" and r.variant == conv.variant
                   for r in replies)


def test_generated_turns_are_stored_at_their_planned_times_once(
        sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
        tmp_path: Path) -> None:
    records = sample_records(tmp_path, per_outcome=1)
    by_source = {r["conversation_id"]: r for r in load_conversations([records])}
    seeded = Store.from_settings(make_settings(tmp_path / "store"))
    try:
        with build(sample_kb.settings, kb=sample_kb, store=seeded) as engine:
            seed_store(seeded, records, engine.conversations)
            again = seed_store(seeded, records, engine.conversations)
        convs = seeded.conversations.find()
        messages = {c.id: seeded.messages.for_conversation(c.id) for c in convs}
        tickets = {c.id: seeded.tickets.find(conversation_id=c.id) for c in convs}
    finally:
        seeded.close()

    assert (again.created, again.resumed, again.messages, again.tickets) == (0, 0, 0, 0)
    assert again.skipped == len(by_source)
    for conv in convs:
        record = by_source[conv.metadata[SOURCE_KEY]]
        assert conv.created_at == created_at(record)
        planned = [at for turn, at in zip(record["turns"], timeline(record), strict=True)
                   if turn["role"] != "assistant"]
        stored = messages[conv.id]
        assert [m.created_at for m in stored if m.role != "assistant"] == planned
        for before, reply in itertools.pairwise(stored):
            if reply.role == "assistant":  # stored when the answer was ready
                assert before.role == "customer" and reply.created_at > before.created_at
        assert len(tickets[conv.id]) == (1 if is_escalated(record) or any(
            m.reply is not None and m.reply.decision == "escalate" for m in stored) else 0)


def test_the_turn_policy_must_write_to_the_seeded_store(
        sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
        tmp_path: Path) -> None:
    other = Store.from_settings(make_settings(tmp_path / "other"))
    seeded = Store.from_settings(make_settings(tmp_path / "store"))
    try:
        with build(sample_kb.settings, kb=sample_kb, store=other) as engine, \
                pytest.raises(ValueError, match=r"pass service\.store"):
            seed_store(seeded, sample_records(tmp_path), engine.conversations)
    finally:
        other.close()
        seeded.close()
