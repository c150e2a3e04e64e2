"""Evaluation datasets: JSONL and CSV cases, their validation errors, the shipped sample set, and
cases built from resolved conversations in a real (SQLite) store."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.domain import Citation, Reply
from app.errors import SourceError
from app.knowledge.base import KnowledgeBase
from app.store import Store
from eval.datasets import KINDS, EvalCase, cases_from_store, load_cases

SAMPLE_CASES = Path(__file__).resolve().parents[2] / "knowledge" / "eval" / "cases.jsonl"


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def load_error(path: Path) -> SourceError:
    with pytest.raises(SourceError) as info:
        load_cases(path)
    return info.value


# ---- JSONL -----------------------------------------------------------------------------------

def test_jsonl_cases_load_with_every_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [
        {"id": "c-1", "turns": ["where is my order", "it still hasn't arrived"],
         "gold_article_ids": ["track-order", "late-or-missing-package"],
         "reference_answer": "Track it under Account → Orders.", "needs_human": False,
         "human_reason": None, "tier": 1, "kind": "multi", "persona": "busy parent",
         "sentiment": "negative", "category": "orders-shipping", "channel": "sms"},
        {"id": "c-2", "question": "  I want a human  ", "needs_human": True,
         "human_reason": "explicit_request", "tier": 2, "kind": "human_request"},
    ])
    first, second = load_cases(path)
    assert first == EvalCase(
        id="c-1", turns=["where is my order", "it still hasn't arrived"],
        gold_article_ids=["track-order", "late-or-missing-package"],
        reference_answer="Track it under Account → Orders.", needs_human=False,
        human_reason=None, tier=1, kind="multi", persona="busy parent", sentiment="negative",
        category="orders-shipping", channel="sms")
    # 'question' stands in for 'turns'; defaults fill the rest
    assert second.turns == ["I want a human"]
    assert (second.needs_human, second.human_reason, second.tier, second.kind) == (
        True, "explicit_request", 2, "human_request")
    assert (second.gold_article_ids, second.reference_answer, second.channel,
            second.sentiment) == ([], "", "web", "neutral")
    assert second.to_dict()["turns"] == ["I want a human"]


def test_kind_defaults_from_the_number_of_turns_and_blank_lines_are_skipped(
        tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [
        {"id": "one", "turns": ["how do I start a return"]}, "", "   ",
        {"id": "two", "turns": ["hi", "it broke"]},
    ])
    assert [(c.id, c.kind) for c in load_cases(path)] == [("one", "single"), ("two", "multi")]


# ---- CSV -------------------------------------------------------------------------------------

CSV_HEADER = ["id", "turns", "gold_article_ids", "reference_answer", "needs_human",
              "human_reason", "tier", "kind", "persona", "sentiment", "category", "channel"]


def test_csv_turns_joined_by_pipes_or_as_a_json_list_and_comma_separated_gold(
        tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", CSV_HEADER, [
        ["p-1", "where is my order || it still hasn't arrived",
         "track-order, late-or-missing-package", "Track it under Account → Orders.", "false",
         "", "1", "", "", "", "orders-shipping", "sms"],
        ["p-2", json.dumps(["my kettle leaks", "yes, from the base"]), "kettle-leaking",
         "", "no", "", "", "multi", "", "negative", "", ""],
        ["p-3", "I want a person", "contact-support", "An agent will pick this up.", "yes",
         "explicit_request", "2", "human_request", "", "", "", "whatsapp"],
    ])
    cases = {c.id: c for c in load_cases(path)}
    assert list(cases) == ["p-1", "p-2", "p-3"]
    p1, p2, p3 = cases["p-1"], cases["p-2"], cases["p-3"]
    assert p1.turns == ["where is my order", "it still hasn't arrived"]
    assert p1.gold_article_ids == ["track-order", "late-or-missing-package"]
    assert (p1.kind, p1.needs_human, p1.human_reason, p1.tier, p1.channel) == (
        "multi", False, None, 1, "sms")
    assert p2.turns == ["my kettle leaks", "yes, from the base"]
    assert (p2.gold_article_ids, p2.tier, p2.channel, p2.sentiment) == (
        ["kettle-leaking"], 1, "web", "negative")
    assert p3.turns == ["I want a person"]
    assert (p3.needs_human, p3.human_reason, p3.tier, p3.kind) == (
        True, "explicit_request", 2, "human_request")


def test_csv_errors_name_the_physical_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", ["id", "turns", "kind"], [
        ["ok-1", "hello", "single"],
        ["ok-2", "hello again", "rant"],
    ])
    error = load_error(path)
    assert (error.source, error.line) == (str(path), 3)
    assert "'kind'" in str(error) or "kind 'rant'" in str(error)


def test_csv_malformed_json_list_turns_name_file_line_and_field(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cases.csv", ["id", "turns"], [
        ["ok-1", "hello"],
        ["bad-1", '["where is my order", '],
    ])
    error = load_error(path)
    assert (error.source, error.line) == (str(path), 3)
    assert "turns" in str(error)


# ---- validation errors -----------------------------------------------------------------------

GOOD = {"id": "good", "turns": ["how do I start a return"]}


@pytest.mark.parametrize(("bad", "field_words"), [
    ({"turns": ["no id here"]}, ["'id'"]),
    ({"id": "   ", "turns": ["blank id"]}, ["'id'"]),
    ({"id": "no-turns"}, ["no-turns", "'turns'"]),
    ({"id": "empty-turns", "turns": []}, ["empty-turns", "'turns'"]),
    ({"id": "blank-turn", "turns": ["fine", "  "]}, ["blank-turn", "'turns'"]),
    ({"id": "number-turns", "turns": [1, 2]}, ["number-turns", "'turns'"]),
    ({"id": "bad-kind", "turns": ["x"], "kind": "rant"}, ["bad-kind", "kind 'rant'",
                                                          ", ".join(KINDS)]),
    (["not", "an", "object"], ["JSON object"]),
])
def test_invalid_records_name_file_line_and_field(tmp_path: Path, bad: Any,
                                                  field_words: list[str]) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [GOOD, bad])
    error = load_error(path)
    assert (error.source, error.line) == (str(path), 2)
    assert str(error).startswith(f"{path}:2: ")
    for words in field_words:
        assert words in str(error)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [GOOD, {"id": "two", "turns": ["x"]},
                                                  '{"id": "three", "turns": ["cut off"'])
    error = load_error(path)
    assert (error.source, error.line) == (str(path), 3)
    assert "malformed JSON" in str(error)


def test_duplicate_ids_are_refused_naming_the_file_and_id(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [
        GOOD, {"id": "other", "turns": ["y"]}, {"id": "good", "turns": ["again"]}])
    error = load_error(path)
    assert error.source == str(path)
    assert "duplicate case id 'good'" in str(error)


def test_duplicate_id_error_names_the_line_of_the_repeat(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [
        GOOD, {"id": "other", "turns": ["y"]}, {"id": "good", "turns": ["again"]}])
    assert load_error(path).line == 3


@pytest.mark.parametrize(("name", "text"), [
    ("empty.jsonl", ""), ("blank.jsonl", "\n  \n\n"), ("header-only.csv", "id,turns\n")])
def test_an_empty_dataset_is_refused(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    error = load_error(path)
    assert error.source == str(path)
    assert "dataset is empty" in str(error)


def test_a_missing_file_is_a_source_error(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nowhere.jsonl")
    assert error.source == str(tmp_path / "nowhere.jsonl")
    assert "cannot read dataset" in str(error)


# ---- the shipped sample set ------------------------------------------------------------------

def test_sample_cases_load_cover_every_kind_and_cite_ingested_articles(
        sample_kb: KnowledgeBase) -> None:
    cases = load_cases(SAMPLE_CASES)
    assert len(cases) >= 200
    kinds = Counter(c.kind for c in cases)
    assert set(kinds) == set(KINDS), kinds
    assert len({c.id for c in cases}) == len(cases)
    assert all(c.turns and all(t.strip() for t in c.turns) for c in cases)
    assert all((c.kind == "multi") <= (len(c.turns) > 1) for c in cases)
    assert all(c.needs_human == bool(c.human_reason) for c in cases)
    assert all(c.kind != "human_request" or c.needs_human for c in cases)
    articles = {d.doc_id for d in sample_kb.manifest.documents("articles").values()}
    unknown = {(c.id, g) for c in cases for g in c.gold_article_ids if g not in articles}
    assert not unknown, f"gold ids that are not ingested articles: {sorted(unknown)[:5]}"


# ---- cases built from the store --------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    settings = Settings(_env_file=None, data_dir=tmp_path_factory.mktemp("store"))  # type: ignore[call-arg]
    store = Store.from_settings(settings)
    yield store
    store.close()


T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def conversation(store: Store, at: datetime, messages: list[tuple[str, str, Reply | None]],
                 feedback: list[dict[str, Any]], channel: str = "web") -> str:
    conv = store.conversations.create(channel=channel, at=at)
    for i, (role, body, reply) in enumerate(messages):
        store.messages.append(conv.id, role, body, reply=reply, at=at + timedelta(seconds=i))
    for fb in feedback:
        store.feedback.record(conv.id, at=at + timedelta(minutes=5), **fb)
    return conv.id


@pytest.fixture(scope="module")
def conversations(store: Store) -> dict[str, str]:
    answer = Reply("", decision="answer", citations=[Citation("track-order")])
    return {
        "resolved": conversation(store, T0, [
            ("customer", "where is my order LM-48213907", None),
            ("assistant", "You can track it in Account → Orders.", Reply(
                "", decision="answer", citations=[Citation("track-order")])),
            ("customer", "it says shipped 3 days ago but nothing yet", None),
            ("assistant", "Packages can take up to 2 days past the estimate.", Reply(
                "", decision="answer",
                citations=[Citation("late-or-missing-package"), Citation("track-order")])),
        ], [{"resolved": True, "csat": 5}], channel="sms"),
        "escalated": conversation(store, T0 + timedelta(hours=1), [
            ("customer", "someone changed my email and I can't log in", None),
            ("assistant", "I'm passing this to our security team.", Reply(
                "", decision="escalate", reason="account_security")),
            ("agent", "I've restored your email and reset your sessions.", None),
        ], [{"resolved": True}], channel="email"),
        "unresolved": conversation(store, T0 + timedelta(hours=2), [
            ("customer", "where is my order", None),
            ("assistant", "You can track it in Account → Orders.", answer),
        ], [{"resolved": False, "csat": 2}]),
        "rated_only": conversation(store, T0 + timedelta(hours=3), [
            ("customer", "where is my order", None),
            ("assistant", "You can track it in Account → Orders.", answer),
        ], [{"csat": 4}]),
        "no_feedback": conversation(store, T0 + timedelta(hours=4), [
            ("customer", "where is my order", None),
            ("assistant", "You can track it in Account → Orders.", answer),
        ], []),
        "no_answer": conversation(store, T0 + timedelta(hours=5), [
            ("customer", "hello?", None),
        ], [{"resolved": True}]),
    }


def test_cases_from_store_keep_only_conversations_confirmed_resolved(
        store: Store, conversations: dict[str, str]) -> None:
    cases = {c.id: c for c in cases_from_store(store, limit=100)}
    assert set(cases) == {f"store-{conversations['resolved']}",
                          f"store-{conversations['escalated']}"}
    solved = cases[f"store-{conversations['resolved']}"]
    assert solved.turns == ["where is my order LM-48213907",
                            "it says shipped 3 days ago but nothing yet"]
    assert solved.gold_article_ids == ["late-or-missing-package", "track-order"]
    assert solved.reference_answer == "Packages can take up to 2 days past the estimate."
    assert (solved.kind, solved.needs_human, solved.human_reason, solved.tier,
            solved.channel) == ("multi", False, None, 1, "sms")
    handed = cases[f"store-{conversations['escalated']}"]
    assert handed.turns == ["someone changed my email and I can't log in"]
    assert handed.reference_answer == "I've restored your email and reset your sessions."
    assert (handed.gold_article_ids, handed.kind, handed.needs_human, handed.human_reason,
            handed.tier, handed.channel) == ([], "single", True, "unresolved", 2, "email")


def test_cases_from_store_filter_by_creation_time(store: Store,
                                                  conversations: dict[str, str]) -> None:
    later = cases_from_store(store, start=T0 + timedelta(minutes=30), limit=100)
    assert [c.id for c in later] == [f"store-{conversations['escalated']}"]
    earlier = cases_from_store(store, end=T0 + timedelta(minutes=30), limit=100)
    assert [c.id for c in earlier] == [f"store-{conversations['resolved']}"]
    assert cases_from_store(store, start=T0 + timedelta(days=1), limit=100) == []


def test_cases_from_store_with_the_default_limit(store: Store,
                                                 conversations: dict[str, str]) -> None:
    assert len(cases_from_store(store)) == 2
