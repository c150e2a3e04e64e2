"""The analyst notebooks run top to bottom on sample data and are committed without outputs.

The data: a SQLite store seeded by ``eval.sample_data.seed_store`` with the past conversations,
and a small offline A/B run (12 cases, both variants, ragas on) over the session's sample KB.
The notebooks read them through ``SUPPORTBOT_DATA_DIR`` / ``SUPPORTBOT_EVAL_DIR``, passed in the
kernel's environment. The kernel is ipykernel's own spec for this interpreter
(``sys.executable``), so no kernelspec installed on the machine can swap in another Python.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from app.config import Settings
from app.container import build
from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH, assign, load_variants
from app.store import Store, summarize
from eval.experiment import run_experiment
from eval.metrics.csat import load_conversations
from eval.sample_data import SOURCE_KEY, is_escalated, seed_store
from tests.conftest import KNOWLEDGE, REPO
from tests.store.conftest import BACKENDS, backend_settings, postgres_url  # noqa: F401 (fixture)

NOTEBOOKS = REPO / "notebooks"
NAMES = ("ab_test_analysis.ipynb", "support_analytics.ipynb")
VARIANTS = ["control", "concise_empathetic"]
HISTORY = KNOWLEDGE / "conversations"
ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))


# ---- running a notebook ------------------------------------------------------------------

def execute(name: str, data_dir: Path, eval_dir: Path) -> nbformat.NotebookNode:
    """Run the committed notebook in a fresh kernel from the repository root; a failing cell
    raises ``CellExecutionError`` with its traceback."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir),
           "SUPPORTBOT_EVAL_DIR": str(eval_dir),
           "DATABASE_URL": ""}  # a developer's .env must not point the notebook elsewhere
    km = AsyncKernelManager(kernel_name="python3",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    NotebookClient(nb, km=km, timeout=300,
                   resources={"metadata": {"path": str(REPO)}}).execute(env=env)
    return nb


def outputs(nb: nbformat.NotebookNode) -> Iterator[dict[str, Any]]:
    for cell in nb.cells:
        yield from cell.get("outputs", [])


def printed(nb: nbformat.NotebookNode) -> str:
    return "".join(o["text"] for o in outputs(nb) if o["output_type"] == "stream"
                   and o["name"] == "stdout")


def figures(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


def assert_clean_run(nb: nbformat.NotebookNode) -> None:
    errors = [o for o in outputs(nb) if o["output_type"] == "error"]
    assert not errors, errors
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell did not run"


# ---- sample data ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeded_dir(make_settings: Callable[..., Settings],
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding every past conversation, replayed."""
    data_dir = tmp_path_factory.mktemp("seeded-store")
    seeded = Store.from_settings(make_settings(data_dir))
    try:
        report = seed_store(seeded, HISTORY)
    finally:
        seeded.close()
    assert report.created == len(load_conversations([HISTORY])), report.summary()
    return data_dir


@pytest.fixture(scope="module")
def eval_dir(sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small offline A/B run on the session's sample KB (not ingested again)."""
    out = tmp_path_factory.mktemp("eval-out")
    settings = make_settings(sample_kb.settings.data_dir, variants_path=DEFAULT_VARIANTS_PATH)
    run_experiment(settings, VARIANTS, KNOWLEDGE / "eval" / "cases.jsonl", out, limit=12,
                   ragas=True, live=False, progress=False)
    assert (out / "rows.parquet").exists()
    return out


# ---- the notebooks ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


def test_ab_test_notebook_compares_variants_offline_and_live(seeded_dir: Path,
                                                             eval_dir: Path) -> None:
    nb = execute("ab_test_analysis.ipynb", seeded_dir, eval_dir)

    assert_clean_run(nb)
    text = printed(nb)
    assert "12 cases x 2 variants; control: control" in text
    for noun, verb in (("resolution", "resolves"), ("correct handling", "handles correctly"),
                       ("escalation", "escalates"), ("the CSAT proxy", "moves the CSAT proxy")):
        assert re.search(rf"^- (no detectable difference in {noun} at |concise_empathetic "
                         rf"{verb} )", text, re.M), noun
    live = text.split("Live verdicts", 1)[1]
    for noun, verb in (("resolution", "resolves"), ("escalation", "escalates"),
                       ("CSAT", "moves CSAT")):
        assert re.search(rf"^- (no detectable difference in {noun} at |concise_empathetic "
                         rf"{verb} )", live, re.M), noun
    # bars with CIs, segments, recall@k, confusion matrix, CSAT/latency, offline vs live
    assert figures(nb) >= 6


def test_ab_test_notebook_says_when_the_store_lacks_live_data(eval_dir: Path,
                                                              tmp_path: Path) -> None:
    nb = execute("ab_test_analysis.ipynb", tmp_path / "empty-store", eval_dir)

    assert_clean_run(nb)
    assert "no live data for both variants yet" in printed(nb)


def test_support_analytics_notebook_reads_the_store_and_the_history(seeded_dir: Path,
                                                                    tmp_path: Path) -> None:
    nb = execute("support_analytics.ipynb", seeded_dir, tmp_path / "no-eval-run")

    assert_clean_run(nb)
    text = printed(nb)
    n = len(load_conversations([HISTORY]))
    assert f"{n} conversations in the store" in text
    assert f"{n} past conversations" in text
    # volume, resolution trend, reasons, channel mix, CSAT, first response, 3 on the history
    assert figures(nb) >= 9


def test_support_analytics_notebook_on_an_empty_store_shows_the_history(tmp_path: Path) -> None:
    nb = execute("support_analytics.ipynb", tmp_path / "empty-store", tmp_path / "no-eval-run")

    assert_clean_run(nb)
    assert "the store has no conversations yet" in printed(nb)
    assert figures(nb) == 3  # the historical record only


# ---- eval.sample_data -----------------------------------------------------------------

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


def test_seed_store_with_a_responder_stores_its_replies(
        sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
        tmp_path: Path) -> None:
    seeded = Store.from_settings(make_settings(tmp_path / "store"))
    try:
        with build(sample_kb.settings, kb=sample_kb, store=seeded) as engine:
            report = seed_store(seeded, sample_records(tmp_path, per_outcome=1),
                                engine.responder)
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
