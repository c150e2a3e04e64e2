"""The ragas bridge: offline metrics on hand-made rows, and Claude as judge against a fake API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.config import Settings
from app.errors import ConfigError
from app.knowledge.embedder import Embedder
from eval.metrics.ragas_bridge import (
    LLM_METRICS,
    OFFLINE_METRICS,
    RagasEmbeddings,
    RagasJudge,
    aragas_scores,
    judge_from_settings,
    parse_row,
    ragas_scores,
)
from tests.fakes.claude_server import Behaviour, FakeClaudeServer

KEY = "sk-ant-test-key"
GOLD = "Refunds are accepted within 30 days of delivery, to the original payment method."
OTHER = "Standard shipping takes three to five working days and is free over fifty dollars."
QUESTION = "How long do I have to ask for a refund?"
REFERENCE = "You can ask for a refund within 30 days of delivery."

# instructor 1.3.2 warns on each parse that its FUNCTIONS mode is deprecated (we use JSON mode).
pytestmark = pytest.mark.filterwarnings("ignore:FUNCTIONS is deprecated:DeprecationWarning")


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"question": QUESTION, "answer": REFERENCE, "contexts": [GOLD],
                            "reference": REFERENCE, "reference_contexts": [GOLD]}
    return base | overrides


def one(**overrides: Any) -> dict[str, float]:
    [scores] = ragas_scores([row(**overrides)])
    return scores


# ---- offline metrics --------------------------------------------------------------------


def test_identical_answer_and_reference_score_one() -> None:
    scores = one()
    assert list(scores) == list(OFFLINE_METRICS)
    assert scores["string_similarity"] == 1.0
    assert scores["rouge_l"] == pytest.approx(1.0)


def test_disjoint_answer_scores_near_zero() -> None:
    scores = one(answer="Our warehouse ships parcels every Tuesday.")
    assert scores["rouge_l"] == 0.0
    assert scores["string_similarity"] < 0.35


def test_partial_overlap_rouge_is_the_lcs_f1() -> None:
    # LCS "refund within 30 days" (stemmed) = 5 of 6 answer tokens and 5 of 11 reference tokens.
    scores = one(answer="A refund within 30 days works.")
    precision, recall = 5 / 6, 5 / 11
    assert scores["rouge_l"] == pytest.approx(2 * precision * recall / (precision + recall))


@pytest.mark.parametrize(
    ("contexts", "precision", "recall"),
    [
        ([GOLD], 1.0, 1.0),
        ([GOLD, OTHER], 1.0, 1.0),  # the gold passage ranked first
        ([OTHER, GOLD], 0.5, 1.0),  # ranked second: average precision 1/2
        ([OTHER], 0.0, 0.0),
    ],
)
def test_context_precision_and_recall(contexts: list[str], precision: float,
                                      recall: float) -> None:
    scores = one(contexts=contexts)
    assert scores["context_precision"] == pytest.approx(precision)
    assert scores["context_recall"] == pytest.approx(recall)


def test_recall_counts_each_gold_passage() -> None:
    scores = one(contexts=[GOLD], reference_contexts=[GOLD, OTHER])
    assert scores["context_recall"] == pytest.approx(0.5)


def test_a_near_copy_of_the_gold_passage_still_matches() -> None:
    reworded = GOLD.replace("accepted", "allowed").replace("original", "same")
    assert one(contexts=[reworded])["context_recall"] == 1.0


def test_without_gold_passages_the_reference_answer_stands_in() -> None:
    assert one(contexts=[REFERENCE], reference_contexts=None)["context_recall"] == 1.0
    # The known limit: a long passage that contains the answer is not "similar" to it.
    scores = one(contexts=[GOLD], reference_contexts=None)
    assert scores["context_recall"] == 0.0 and scores["context_precision"] == 0.0


def test_nothing_to_score_is_nan() -> None:
    no_answer = one(answer="  ")
    assert math.isnan(no_answer["string_similarity"]) and math.isnan(no_answer["rouge_l"])
    assert no_answer["context_recall"] == 1.0  # retrieval is scored all the same
    no_reference = one(reference="", reference_contexts=None)
    assert all(math.isnan(v) for v in no_reference.values())
    no_gold = one(reference_contexts=[])
    assert math.isnan(no_gold["context_precision"]) and math.isnan(no_gold["context_recall"])
    nothing_retrieved = one(contexts=[])
    assert math.isnan(nothing_retrieved["context_precision"])
    assert nothing_retrieved["context_recall"] == 0.0


def test_rows_from_a_dataframe_and_the_runners_column_name() -> None:
    frame = pd.DataFrame([row(), row(answer="Nope.")]).rename(
        columns={"reference": "reference_answer"})
    frame.loc[1, "reference_contexts"] = np.nan  # a missing cell in a DataFrame
    first, second = ragas_scores(frame)
    assert first["string_similarity"] == 1.0
    assert second["context_recall"] == 0.0  # fell back to the reference answer
    assert ragas_scores([]) == []


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"question": None}, r"row 0: field 'question' is missing; add 'question'"),
        ({"question": " "}, r"'question' is empty"),
        ({"answer": 3}, r"'answer' must be a string, got int"),
        ({"contexts": GOLD}, r"'contexts' must be a list of strings.*wrap a single passage"),
        ({"contexts": [GOLD, 7]}, r"every item of 'contexts' must be a string"),
        ({"reference_contexts": GOLD}, r"'reference_contexts' must be a list of strings"),
    ],
)
def test_invalid_rows_are_refused_with_the_fix(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_row(row(**bad))


@pytest.mark.parametrize("name", ["question", "answer", "contexts", "reference"])
def test_each_required_field_is_named_when_missing(name: str) -> None:
    incomplete = {k: v for k, v in row().items() if k != name}
    with pytest.raises(ValueError, match=rf"row 1: field '{name}' is missing; add '{name}'"):
        ragas_scores([row(), incomplete])


# ---- Claude as the judge ------------------------------------------------------------------


class HashingEmbedder(Embedder):
    """Bag of hashed words: the same text always gets the same unit vector (no model load)."""

    name = "hashing"
    dim = 64

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
        return out


def statements(*texts: str) -> Behaviour:
    return Behaviour.reply(json.dumps({"statements": list(texts)}))


def verdicts(*pairs: tuple[str, int]) -> Behaviour:
    judged = [{"statement": s, "reason": "checked against the context", "verdict": v}
              for s, v in pairs]
    # Claude often fences its JSON; ragas's parser must cope.
    return Behaviour.reply("```json\n" + json.dumps({"statements": judged}) + "\n```")


def generated_question(question: str, noncommittal: int = 0) -> Behaviour:
    return Behaviour.reply(json.dumps({"question": question, "noncommittal": noncommittal}))


STATEMENTS = ("Refunds are accepted within 30 days.", "Refunds go to the original payment "
              "method.", "Refunds are paid in cash.")


@pytest.fixture
def server() -> Iterator[FakeClaudeServer]:
    with FakeClaudeServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def settings(server: FakeClaudeServer, tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, anthropic_api_key=KEY,  # type: ignore[call-arg]
                    claude_model="claude-judge-test", claude_base_url=server.url,
                    claude_max_retries=0, claude_timeout=5.0)


@pytest.fixture
def make_judge(settings: Settings) -> Callable[..., RagasJudge]:
    def make(**options: Any) -> RagasJudge:
        options = {"strictness": 2, "max_concurrency": 1} | options
        judge = judge_from_settings(settings, embedder=HashingEmbedder(), **options)
        assert judge is not None
        return judge

    return make


def test_no_key_means_no_judge(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert judge_from_settings(settings) is None
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        RagasJudge("", "claude", RagasEmbeddings(HashingEmbedder()))


def test_faithfulness_and_relevancy_from_scripted_judgements(
        server: FakeClaudeServer, make_judge: Callable[..., RagasJudge]) -> None:
    server.enqueue(statements(*STATEMENTS),
                   verdicts((STATEMENTS[0], 1), (STATEMENTS[1], 1), (STATEMENTS[2], 0)),
                   generated_question(QUESTION), generated_question(QUESTION))
    judge = make_judge()
    [scores] = ragas_scores([row(answer="Within 30 days, to your card, in cash.")],
                            llm_judge=judge)

    assert list(scores) == [*OFFLINE_METRICS, *LLM_METRICS]
    assert scores["faithfulness"] == pytest.approx(2 / 3)
    assert scores["answer_relevancy"] == pytest.approx(1.0)  # the questions match the asked one
    assert judge.failures == []

    assert server.request_count == 4
    first, second = server.requests[0].body, server.requests[1].body
    assert first["model"] == "claude-judge-test"
    assert "top_p" not in first and "temperature" not in first
    assert "Within 30 days, to your card, in cash." in first["messages"][0]["content"]
    assert GOLD in second["messages"][0]["content"]  # the passages the answer is checked against
    assert all(STATEMENTS[i] in second["messages"][0]["content"] for i in range(3))
    assert "JSON" in first["system"]


def test_a_noncommittal_answer_is_not_relevant(
        server: FakeClaudeServer, make_judge: Callable[..., RagasJudge]) -> None:
    server.enqueue(statements(STATEMENTS[0]), verdicts((STATEMENTS[0], 1)),
                   generated_question(QUESTION, 1), generated_question(QUESTION, 1))
    [scores] = ragas_scores([row(answer="It depends.")], llm_judge=make_judge())
    assert scores["faithfulness"] == 1.0
    assert scores["answer_relevancy"] == 0.0


def test_garbage_and_errors_from_the_judge_are_nan_not_a_crash(
        server: FakeClaudeServer, make_judge: Callable[..., RagasJudge],
        caplog: pytest.LogCaptureFixture) -> None:
    server.enqueue(
        Behaviour.reply("Sure! The statements are: refunds, cards, cash."),  # row 0 faithfulness
        generated_question(QUESTION), Behaviour.reply('{"question": 42}'),  # row 0 relevancy
        Behaviour.server_error(500),  # row 1 faithfulness
        generated_question(QUESTION), generated_question(QUESTION),  # row 1 relevancy
    )
    judge = make_judge()
    first, second = ragas_scores([row(), row()], llm_judge=judge)

    assert math.isnan(first["faithfulness"]) and math.isnan(first["answer_relevancy"])
    assert math.isnan(second["faithfulness"])
    assert second["answer_relevancy"] == pytest.approx(1.0)
    assert first["string_similarity"] == 1.0  # the offline scores are unaffected
    assert [(f.row, f.metric) for f in judge.failures] == [
        (0, "faithfulness"), (0, "answer_relevancy"), (1, "faithfulness")]
    assert "JSONDecodeError" in judge.failures[0].error
    assert "InternalServerError" in judge.failures[2].error
    assert "3 of 4 LLM scores failed" in caplog.text


def test_rows_without_an_answer_or_passages_are_not_sent_to_the_judge(
        server: FakeClaudeServer, make_judge: Callable[..., RagasJudge]) -> None:
    server.enqueue(generated_question(QUESTION), generated_question(QUESTION))
    no_answer, no_passages = ragas_scores([row(answer=""), row(contexts=[])],
                                          llm_judge=make_judge())
    assert math.isnan(no_answer["faithfulness"]) and math.isnan(no_answer["answer_relevancy"])
    assert math.isnan(no_passages["faithfulness"])
    assert no_passages["answer_relevancy"] == pytest.approx(1.0)
    assert server.request_count == 2  # only the relevancy questions for the second row


def test_one_judge_serves_many_runs_and_async_callers(
        server: FakeClaudeServer, make_judge: Callable[..., RagasJudge]) -> None:
    judge = make_judge(strictness=1)
    for _ in range(2):  # a second run must not reuse the first run's closed event loop
        server.enqueue(statements(STATEMENTS[0]), verdicts((STATEMENTS[0], 0)),
                       generated_question(QUESTION))
        [scores] = ragas_scores([row()], llm_judge=judge)
        assert scores["faithfulness"] == 0.0

    async def inside_a_loop() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        server.enqueue(statements(STATEMENTS[0]), verdicts((STATEMENTS[0], 1)),
                       generated_question(QUESTION))
        awaited = await aragas_scores([row()], llm_judge=judge)
        return awaited, ragas_scores([row()])  # the sync API works in a notebook's loop too

    awaited, synced = asyncio.run(inside_a_loop())
    assert awaited[0]["faithfulness"] == 1.0
    assert synced[0]["string_similarity"] == 1.0
    assert judge.failures == []


def test_the_local_embedding_model_through_ragas_embeddings(embedder: Embedder) -> None:
    embeddings = RagasEmbeddings(embedder)
    one_vector = embeddings.embed_text(QUESTION)
    many = asyncio.run(embeddings.aembed_texts([QUESTION, REFERENCE]))
    assert len(one_vector) == embedder.dim and len(many) == 2
    assert np.dot(one_vector, many[0]) == pytest.approx(1.0, abs=1e-5)
