"""The eval runner on the real responder (extractive model, hybrid retrieval over the sample
knowledge base, the real embedding model): turns fed in order with history, the row table, the
offline and LLM judges, determinism, and resuming an interrupted run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.config import Settings
from app.domain import Reply
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder, TurnInput
from app.responder.types import Turn
from app.responder.variants import DEFAULT_VARIANTS_PATH, Variant, load_variants
from app.services.conversations import ConversationService
from app.store import Store
from eval.datasets import EvalCase, load_cases
from eval.runner import ROWS_FILE, gold_passages, row_for, run_case, run_eval

SAMPLE_CASES = Path(__file__).resolve().parents[2] / "knowledge" / "eval" / "cases.jsonl"
# A multi-turn case whose second message only makes sense with the first; one answered single
# turn; an ambiguous one (clarified); an explicit request for a person (escalated).
CASE_IDS = ("case-016", "case-017", "case-009", "case-010")
ORDER_QUESTION = "where is my order LM-123, it was due monday"
TIMING = ("latency_ms", "wall_ms")

# The columns eval.metrics and the report read, with the types a row holds.
SCALARS: dict[str, type | tuple[type, ...]] = {
    "case_id": str, "variant": str, "kind": str, "tier": int, "category": str, "channel": str,
    "persona": str, "gold_sentiment": str, "needs_human": bool, "reference_answer": str,
    "question": str, "n_turns": int, "answer": str, "decision": str, "escalated": bool,
    "clarified": bool, "confidence": float, "latency_ms": float, "provider": str,
    "model": str, "input_tokens": int, "output_tokens": int, "wall_ms": float,
}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "human_reason": str, "escalation_reason": str, "turns_to_resolution": int,
    "fallback_from": str, "similarity": float, "judge_correct": bool,
}
STRING_LISTS = ("gold_article_ids", "cited_article_ids", "retrieved_ids", "contexts",
                "reference_contexts")


class CountingResponder(Responder):
    """The real responder, remembering every turn it was asked to answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns: list[TurnInput] = []

    def respond_stream(self, turn: TurnInput) -> Iterator[str | Reply]:
        self.turns.append(turn)
        return super().respond_stream(turn)


class CountingService(ConversationService):
    """The real turn policy over a counting responder."""

    responder: CountingResponder

    @property
    def turns(self) -> list[TurnInput]:
        return self.responder.turns


@pytest.fixture(scope="module")
def make_responder(sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
                   tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Callable[[], CountingService]]:
    """A fresh service (its own counting responder) over one scratch store per module."""
    settings = make_settings(tmp_path_factory.mktemp("runner-store"),
                             variants_path=DEFAULT_VARIANTS_PATH)
    store = Store.from_settings(settings)
    retriever = HybridRetriever(sample_kb)
    config = load_variants(DEFAULT_VARIANTS_PATH)
    yield lambda: CountingService(store, CountingResponder(
        retriever, sample_kb.embedder.embed_query, ExtractiveAnswerModel()), config, settings)
    store.close()


@pytest.fixture(scope="module")
def variants() -> list[Variant]:
    config = load_variants(DEFAULT_VARIANTS_PATH)
    return [config.get("control"), config.get("concise_empathetic")]


@pytest.fixture(scope="module")
def cases() -> list[EvalCase]:
    by_id = {c.id: c for c in load_cases(SAMPLE_CASES)}
    return [by_id[i] for i in CASE_IDS]


@pytest.fixture(scope="module")
def embed(sample_kb: KnowledgeBase) -> Callable[[list[str]], np.ndarray]:
    return sample_kb.embedder.embed_documents


@pytest.fixture(scope="module")
def baseline(make_responder: Callable[[], CountingService], cases: list[EvalCase],
             variants: list[Variant], embed: Callable[[list[str]], np.ndarray],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    out = tmp_path_factory.mktemp("baseline")
    return run_eval(make_responder(), cases, variants, out, embed=embed, progress=False), out


def grid(cases: Sequence[EvalCase], variants: Sequence[Variant]) -> list[tuple[str, str]]:
    return [(c.id, v.name) for c in cases for v in variants]


def keys(table: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(table["case_id"], table["variant"], strict=True))


def assert_same_rows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal apart from the timings (missing cells compare equal)."""
    pd.testing.assert_frame_equal(a.drop(columns=list(TIMING)).reset_index(drop=True),
                                  b.drop(columns=list(TIMING)).reset_index(drop=True))


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ---- run_case --------------------------------------------------------------------------------

def test_run_case_feeds_turns_in_order_with_the_history(
        make_responder: Callable[[], CountingService], variants: list[Variant]) -> None:
    responder = make_responder()
    case = EvalCase(id="follow-up", turns=[ORDER_QUESTION, "it still hasn't arrived"],
                    kind="multi")
    first, second = run_case(responder, case, variants[0])
    asked = responder.turns
    assert [t.message for t in asked] == case.turns
    assert all(t.variant == variants[0] for t in asked)
    assert asked[0].history == []
    assert asked[1].history == [Turn("customer", ORDER_QUESTION), Turn("assistant", first.text)]
    assert asked[1].clarified_before == (first.decision == "clarify")
    # The follow-up was retrieved with the earlier message: the context is what it answered.
    assert ORDER_QUESTION in second.query and second.query.endswith("it still hasn't arrived")
    alone = make_responder().responder.respond(TurnInput("it still hasn't arrived", variants[0]))
    assert alone.query == "it still hasn't arrived"
    assert second.confidence > alone.confidence


def test_run_case_tells_later_turns_the_customer_was_asked_to_clarify(
        make_responder: Callable[[], CountingService], variants: list[Variant]) -> None:
    responder = make_responder()
    case = EvalCase(id="vague", turns=["this is wrong", "it's still wrong", "hello?"],
                    kind="ambiguous")
    replies = run_case(responder, case, variants[0])
    assert replies[0].decision == "clarify"
    assert [t.clarified_before for t in responder.turns] == [False, True, True]
    assert len(responder.turns[2].history) == 4


# ---- rows ------------------------------------------------------------------------------------

def test_rows_have_every_documented_column_with_the_right_types(
        baseline: tuple[pd.DataFrame, Path], cases: list[EvalCase]) -> None:
    table, out = baseline
    rows = jsonl_rows(out / ROWS_FILE)  # the JSON rows, before pandas touches the types
    assert len(rows) == len(table) == 2 * len(cases)
    expected = set(SCALARS) | set(OPTIONAL) | set(STRING_LISTS) | {"sentiment_scores"}
    for row in rows:
        assert set(row) == expected, set(row) ^ expected
        for name, kind in SCALARS.items():
            assert isinstance(row[name], kind), (name, row[name])
        for name, kind in OPTIONAL.items():
            assert row[name] is None or isinstance(row[name], kind), (name, row[name])
        for name in STRING_LISTS:
            assert isinstance(row[name], list) and all(isinstance(v, str) for v in row[name])
        assert len(row["sentiment_scores"]) == row["n_turns"]
        assert all(-1.0 <= s <= 1.0 for s in row["sentiment_scores"])
        assert row["decision"] in ("answer", "clarify", "escalate")
        assert 0.0 <= row["confidence"] <= 1.0 and row["latency_ms"] >= 0
        assert row["judge_correct"] is None  # no judge given


def test_rows_describe_what_happened_to_each_case(baseline: tuple[pd.DataFrame, Path],
                                                  cases: list[EvalCase]) -> None:
    table, _ = baseline
    by_key = {(r["case_id"], r["variant"]): r for r in table.to_dict("records")}
    for case in cases:
        row = by_key[(case.id, "control")]
        assert (row["kind"], row["n_turns"], row["question"], row["needs_human"]) == (
            case.kind, len(case.turns), case.turns[-1], case.needs_human)
        assert row["gold_article_ids"] == case.gold_article_ids
    human = by_key[("case-010", "control")]  # "I want a human."
    assert (human["decision"], human["escalated"], human["provider"]) == (
        "escalate", True, "rules")
    assert human["escalation_reason"] and human["cited_article_ids"] == []
    vague = by_key[("case-009", "control")]  # "this is wrong"
    assert (vague["decision"], vague["clarified"], vague["escalated"]) == (
        "clarify", True, False)
    answered = by_key[("case-017", "control")]  # "what are your support hours"
    assert (answered["decision"], answered["provider"], answered["model"]) == (
        "answer", "extractive", "extractive-v1")
    assert answered["cited_article_ids"] == ["contact-support"] == answered["gold_article_ids"]
    assert answered["turns_to_resolution"] == 1
    assert answered["retrieved_ids"][0] == "contact-support"
    assert answered["contexts"] and answered["reference_contexts"]


def test_turns_to_resolution_counts_up_to_the_first_grounded_answer(
        make_responder: Callable[[], CountingService], variants: list[Variant]) -> None:
    responder = make_responder()
    case = EvalCase(id="late", turns=["this is wrong", "What are your support hours?"],
                    gold_article_ids=["contact-support"], kind="ambiguous")
    replies = run_case(responder, case, variants[0])
    row = row_for(case, variants[0], replies)
    assert [r.decision for r in replies] == ["clarify", "answer"]
    assert row["turns_to_resolution"] == 2
    assert (row["clarified"], row["decision"], row["escalated"]) == (True, "answer", False)
    assert row["latency_ms"] == pytest.approx(np.mean([r.latency_ms for r in replies]))
    unsolved = row_for(EvalCase(id="other-gold", turns=case.turns,
                                gold_article_ids=["track-order"]), variants[0], replies)
    assert unsolved["turns_to_resolution"] is None


def test_gold_passages_are_the_gold_articles_chunks(
        make_responder: Callable[[], CountingService], sample_kb: KnowledgeBase) -> None:
    responder = make_responder()
    passages = gold_passages(responder.responder.retriever, EvalCase(id="g", turns=["x"],
                                                 gold_article_ids=["contact-support"]))
    assert passages and all(isinstance(p, str) and p for p in passages)
    assert gold_passages(responder.responder.retriever, EvalCase(id="none", turns=["x"])) == []


def test_the_same_run_twice_gives_the_same_rows(
        baseline: tuple[pd.DataFrame, Path], make_responder: Callable[[], CountingService],
        cases: list[EvalCase], variants: list[Variant],
        embed: Callable[[list[str]], np.ndarray], tmp_path: Path) -> None:
    first, _ = baseline
    again = run_eval(make_responder(), cases, variants, tmp_path, embed=embed, progress=False)
    assert keys(again) == keys(first) == grid(cases, variants)
    assert_same_rows(again, first)


def test_rows_are_written_as_jsonl_parquet_and_csv(baseline: tuple[pd.DataFrame, Path],
                                                   cases: list[EvalCase],
                                                   variants: list[Variant]) -> None:
    table, out = baseline
    assert [(r["case_id"], r["variant"]) for r in jsonl_rows(out / ROWS_FILE)] == grid(
        cases, variants)
    parquet = pd.read_parquet(out / "rows.parquet")
    assert keys(parquet) == grid(cases, variants)
    assert list(parquet["answer"]) == list(table["answer"])
    assert [list(v) for v in parquet["cited_article_ids"]] == list(table["cited_article_ids"])
    csv = pd.read_csv(out / "rows.csv")
    assert keys(csv) == grid(cases, variants)
    assert set(csv.columns) == set(table.columns)


# ---- judges ----------------------------------------------------------------------------------

def test_similarity_is_a_cosine_when_embed_is_given_and_empty_otherwise(
        baseline: tuple[pd.DataFrame, Path], make_responder: Callable[[], CountingService],
        cases: list[EvalCase], variants: list[Variant],
        embed: Callable[[list[str]], np.ndarray], tmp_path: Path) -> None:
    table, _ = baseline
    assert all(isinstance(s, float) and -1.0 <= s <= 1.0 for s in table["similarity"])
    answered = table[(table["case_id"] == "case-017") & (table["variant"] == "control")]
    assert float(answered["similarity"].iloc[0]) > 0.3  # it answers with the gold article
    offline = run_eval(make_responder(), cases[:1], variants[:1], tmp_path / "no-embed",
                       progress=False)
    assert offline["similarity"].isna().all()
    no_reference = EvalCase(id="no-ref", turns=["What are your support hours?"])
    unref = run_eval(make_responder(), [no_reference], variants[:1], tmp_path / "no-ref",
                     embed=embed, progress=False)
    assert unref["similarity"].isna().all()


def test_a_judges_verdict_lands_in_judge_correct(
        make_responder: Callable[[], CountingService], cases: list[EvalCase],
        variants: list[Variant], tmp_path: Path) -> None:
    calls: list[tuple[str, str, str]] = []

    def judge(question: str, reference: str, answer: str) -> bool | None:
        calls.append((question, reference, answer))
        case_id = {c.turns[-1]: c.id for c in cases}.get(question)
        return {"case-016": True, "case-017": False}.get(case_id or "")

    no_reference = EvalCase(id="no-ref", turns=["What are your support hours?"])
    chosen = [cases[0], cases[1], cases[2], no_reference]
    table = run_eval(make_responder(), chosen, variants[:1], tmp_path, judge=judge,
                     progress=False)
    verdicts = dict(zip(table["case_id"], table["judge_correct"], strict=True))
    assert verdicts["case-016"] is True and verdicts["case-017"] is False
    assert verdicts["case-009"] is None  # the judge gave no verdict
    assert verdicts["no-ref"] is None  # nothing to judge against: the judge is not asked
    answers = dict(zip(table["case_id"], table["answer"], strict=True))
    assert calls == [(c.turns[-1], c.reference_answer, answers[c.id]) for c in chosen[:3]]


# ---- resuming --------------------------------------------------------------------------------

def test_an_interrupted_run_resumes_with_only_the_missing_row(
        baseline: tuple[pd.DataFrame, Path], make_responder: Callable[[], CountingService],
        cases: list[EvalCase], variants: list[Variant],
        embed: Callable[[list[str]], np.ndarray], tmp_path: Path) -> None:
    first, out = baseline
    lines = (out / ROWS_FILE).read_text(encoding="utf-8").splitlines()
    *kept, lost = lines
    # The interruption: the last row is gone and a row was cut off mid-write.
    (tmp_path / ROWS_FILE).write_text("\n".join(kept) + "\n" + lost[: len(lost) // 2],
                                      encoding="utf-8")
    responder = make_responder()
    resumed = run_eval(responder, cases, variants, tmp_path, embed=embed, progress=False)

    missing_case, missing_variant = cases[-1], variants[-1]
    assert [(t.message, t.variant.name) for t in responder.turns] == [
        (m, missing_variant.name) for m in missing_case.turns]
    assert keys(resumed) == grid(cases, variants)  # each case × variant once, in case order
    assert_same_rows(resumed, first)
    kept_rows = [json.loads(line) for line in kept]
    assert list(resumed["wall_ms"][:-1]) == [r["wall_ms"] for r in kept_rows]  # not redone
    assert keys(pd.read_parquet(tmp_path / "rows.parquet")) == grid(cases, variants)

    again = make_responder()
    restarted = run_eval(again, cases, variants, tmp_path, embed=embed, resume=False,
                         progress=False)
    assert len(again.turns) == sum(len(c.turns) for c in cases) * len(variants)
    assert keys(restarted) == grid(cases, variants)
    assert [(r["case_id"], r["variant"]) for r in jsonl_rows(tmp_path / ROWS_FILE)] == grid(
        cases, variants)


def test_resume_ignores_rows_of_cases_no_longer_asked_for(
        baseline: tuple[pd.DataFrame, Path], make_responder: Callable[[], CountingService],
        cases: list[EvalCase], variants: list[Variant],
        embed: Callable[[list[str]], np.ndarray], tmp_path: Path) -> None:
    _, out = baseline
    (tmp_path / ROWS_FILE).write_text((out / ROWS_FILE).read_text(encoding="utf-8"),
                                      encoding="utf-8")
    responder = make_responder()
    subset = run_eval(responder, cases[1:3], variants[:1], tmp_path, embed=embed,
                      progress=False)
    assert responder.turns == []
    assert keys(subset) == grid(cases[1:3], variants[:1])


def test_a_resumed_row_is_kept_on_disk_for_the_next_resume(
        baseline: tuple[pd.DataFrame, Path], make_responder: Callable[[], CountingService],
        cases: list[EvalCase], variants: list[Variant],
        embed: Callable[[list[str]], np.ndarray], tmp_path: Path) -> None:
    _, out = baseline
    *kept, lost = (out / ROWS_FILE).read_text(encoding="utf-8").splitlines()
    (tmp_path / ROWS_FILE).write_text("\n".join(kept) + "\n" + lost[: len(lost) // 2],
                                      encoding="utf-8")
    run_eval(make_responder(), cases, variants, tmp_path, embed=embed, progress=False)
    third = make_responder()
    run_eval(third, cases, variants, tmp_path, embed=embed, progress=False)
    assert third.turns == []

