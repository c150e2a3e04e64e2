"""ragas metrics for the offline evaluation, scored by ragas's own metric classes.

Always (offline, no model calls): non-LLM context precision and recall against the gold passages,
Levenshtein string similarity and ROUGE-L F1 of the answer against the reference answer. With a
``RagasJudge`` (``judge_from_settings`` builds one when an Anthropic key is set): faithfulness and
answer (response) relevancy, with Claude as ragas's judge (the evaluation's one judge
configuration, ``eval.judge.JudgeConfig``) and our local embedding model.

Rows are dicts (or a DataFrame) with ``question``, ``answer``, ``contexts`` (the passages given to
the answer model), ``reference`` (the reference answer; the runner's ``reference_answer`` is read
too) and optionally ``reference_contexts`` (gold passages). Without ``reference_contexts`` the
reference answer stands in as the single gold passage; ragas compares passages by Levenshtein
similarity (threshold 0.5), so a long passage that merely *contains* a short reference answer
does not count as a match, and the context scores then read low: give gold passages when you can.

A score is NaN when there is nothing to score (no answer, an empty reference, no retrieved or no
gold passages; context recall with gold passages but nothing retrieved is 0). A judge failure
(API error, unparsable output) makes that one score NaN, is logged and kept in
``RagasJudge.failures``; the run goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import os
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anthropic
import pandas as pd
from instructor.retry import InstructorRetryException  # type: ignore[attr-defined]
from pydantic import ValidationError
from ragas.dataset_schema import SingleTurnSample
from ragas.embeddings.base import BaseRagasEmbedding
from ragas.llms import llm_factory
from ragas.metrics.collections import (
    AnswerRelevancy,
    Faithfulness,
    NonLLMStringSimilarity,
    RougeScore,
)

from eval.judge import JudgeConfig
from eval.metrics import is_missing

with warnings.catch_warnings():
    # ragas 0.4.3 has no collections version of the two non-LLM context metrics; the legacy
    # classes are still the supported way to get them (importing them warns, harmlessly).
    warnings.simplefilter("ignore", DeprecationWarning)
    from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

if TYPE_CHECKING:
    from ragas.llms.base import InstructorBaseRagasLLM

    from app.config import Settings
    from app.knowledge.embedder import Embedder

# ragas reads this on its first usage event; evaluation must never phone home.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

logger = logging.getLogger(__name__)

OFFLINE_METRICS: tuple[str, ...] = (
    "context_precision", "context_recall", "string_similarity", "rouge_l",
)
LLM_METRICS: tuple[str, ...] = ("faithfulness", "answer_relevancy")

# What a failed judge call raises: the SDK's API/transport errors (after its retries), and
# unparsable or schema-violating JSON (instructor wraps the last two in its retry exception).
JUDGE_ERRORS: tuple[type[Exception], ...] = (
    anthropic.APIError, InstructorRetryException, ValidationError, json.JSONDecodeError,
)

_HINTS = {
    "question": "the customer's question, a non-empty string",
    "answer": "the answer the model gave, a string ('' when it gave none)",
    "contexts": "the passages given to the answer model, a list of strings ([] when none)",
    "reference": "the reference answer, a string (the runner's 'reference_answer' also works)",
    "reference_contexts": "the gold passages, a list of strings (or leave the field out)",
}
NAN = math.nan
T = TypeVar("T")


@dataclass(frozen=True)
class RagasInput:
    """One validated row. ``reference_contexts`` is ``(reference,)`` when the row gave none."""

    question: str
    answer: str
    contexts: tuple[str, ...]
    reference: str
    reference_contexts: tuple[str, ...]


@dataclass(frozen=True)
class JudgeFailure:
    """An LLM score that came out NaN because the judge failed."""

    row: int
    metric: str
    error: str


# -- input checks (pure) ------------------------------------------------------------------------


def _bad(index: int, name: str, problem: str) -> ValueError:
    return ValueError(f"ragas row {index}: {problem}; add {name!r}: {_HINTS[name]}")


def _text(row: Mapping[str, Any], name: str, index: int, *aliases: str) -> str:
    key = next((k for k in (name, *aliases) if k in row and not is_missing(row[k])), None)
    if key is None:
        raise _bad(index, name, f"field {name!r} is missing")
    value = row[key]
    if not isinstance(value, str):
        raise _bad(index, name, f"{key!r} must be a string, got {type(value).__name__}")
    return value


def _texts(value: Any, name: str, index: int) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise _bad(index, name, f"{name!r} must be a list of strings, got "
                                f"{type(value).__name__} (wrap a single passage in a list)")
    items = tuple(value)
    if not all(isinstance(v, str) for v in items):
        raise _bad(index, name, f"every item of {name!r} must be a string")
    return items


def parse_row(row: Mapping[str, Any], index: int = 0) -> RagasInput:
    """Validate one row; ``ValueError`` names the field that is missing or wrong and the fix."""
    question = _text(row, "question", index)
    if not question.strip():
        raise _bad(index, "question", "'question' is empty")
    answer = _text(row, "answer", index)
    if "contexts" not in row or is_missing(row["contexts"]):
        raise _bad(index, "contexts", "field 'contexts' is missing")
    contexts = _texts(row["contexts"], "contexts", index)
    reference = _text(row, "reference", index, "reference_answer")
    gold = row.get("reference_contexts")
    if is_missing(gold):
        refs: tuple[str, ...] = (reference,) if reference.strip() else ()
    else:
        refs = _texts(gold, "reference_contexts", index)
    return RagasInput(question, answer, contexts, reference, refs)


def _records(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[Mapping[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        return [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]
    return list(rows)


# -- offline metrics ----------------------------------------------------------------------------


class OfflineMetrics:
    """ragas's non-LLM metrics, built once per run."""

    def __init__(self) -> None:
        self.precision = NonLLMContextPrecisionWithReference()
        self.recall = NonLLMContextRecall()
        self.similarity = NonLLMStringSimilarity()  # 1 - normalised Levenshtein distance
        self.rouge = RougeScore(rouge_type="rougeL", mode="fmeasure")

    async def score(self, row: RagasInput) -> dict[str, float]:
        """The four offline scores of one row (NaN where there is nothing to score)."""
        sample = SingleTurnSample(retrieved_contexts=list(row.contexts),
                                  reference_contexts=list(row.reference_contexts))
        has_gold, has_answer = bool(row.reference_contexts), bool(row.answer.strip())
        text_pair = {"reference": row.reference, "response": row.answer}
        scorable = has_answer and bool(row.reference.strip())
        return {
            "context_precision": (float(await self.precision.single_turn_ascore(sample))
                                  if has_gold and row.contexts else NAN),
            # ragas fails on an empty retrieved list; nothing retrieved recalls nothing.
            "context_recall": (NAN if not has_gold else 0.0 if not row.contexts
                               else float(await self.recall.single_turn_ascore(sample))),
            "string_similarity": (float((await self.similarity.ascore(**text_pair)).value)
                                  if scorable else NAN),
            "rouge_l": float((await self.rouge.ascore(**text_pair)).value) if scorable else NAN,
        }


# -- Claude as the judge ------------------------------------------------------------------------


class RagasEmbeddings(BaseRagasEmbedding):
    """Our ``Embedder`` behind ragas's embeddings interface (answer relevancy needs one).

    Example:
        >>> len(RagasEmbeddings(get_embedder(settings)).embed_text("where is my order"))
        384
    """

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        return [float(x) for x in self.embedder.embed_query(text)]

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return await asyncio.to_thread(self.embed_text, text)

    def embed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return [[float(x) for x in v] for v in self.embedder.embed_documents(list(texts))]

    async def aembed_texts(self, texts: list[str], **kwargs: Any) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_texts, texts)


def claude_llm(client: anthropic.AsyncAnthropic, model: str,
               max_tokens: int = 4096) -> InstructorBaseRagasLLM:
    """ragas's Anthropic LLM (``llm_factory``, instructor JSON mode) around an async client.

    ragas's defaults send ``temperature`` and ``top_p``: current Claude models refuse both
    together, and anthropic>=2 takes neither, so only what the installed SDK accepts is kept
    and ``top_p`` never is.
    """
    llm = llm_factory(model, provider="anthropic", client=client, max_tokens=max_tokens,
                      strict=False, max_retries=1)  # instructor's: 1 attempt, no re-ask
    accepted = inspect.signature(client.messages.create).parameters
    for name in ("temperature", "top_p", "top_k"):
        if name == "top_p" or name not in accepted:
            llm.model_args.pop(name, None)  # type: ignore[attr-defined]
    return llm


@dataclass
class _Judges:
    faithfulness: Faithfulness
    relevancy: AnswerRelevancy


class RagasJudge:
    """Claude as ragas's judge for faithfulness and answer relevancy.

    Each run opens its own ``AsyncAnthropic`` client (``JudgeConfig.async_client``) and closes
    it (an async client must not outlive the event loop it was used in), so one judge serves any
    number of runs.

    Args:
        api_key: the Anthropic API key; empty → ``ConfigError``.
        model: Claude model id.
        embeddings: ragas embeddings for answer relevancy (``RagasEmbeddings(embedder)``).
        base_url: API base URL; None uses the SDK default (tests pass a fake server's URL).
        timeout: seconds per request.
        max_retries: the SDK's retries on 429/5xx/connection errors/timeouts.
        strictness: questions answer relevancy generates per answer (ragas's default 3).
        max_concurrency: rows judged at once.

    Attributes:
        failures: one ``JudgeFailure`` per score lost to a judge error, across runs.

    Example:
        >>> judge = judge_from_settings(settings)
        >>> ragas_scores(rows, llm_judge=judge)[0]["faithfulness"]
        0.75
    """

    def __init__(self, api_key: str | None, model: str, embeddings: BaseRagasEmbedding, *,
                 base_url: str | None = None, timeout: float = 30.0, max_retries: int = 2,
                 strictness: int = 3, max_concurrency: int = 4) -> None:
        self.config = JudgeConfig(api_key, model, base_url, timeout, max_retries)
        if strictness < 1 or max_concurrency < 1:
            raise ValueError(f"Need strictness >= 1 and max_concurrency >= 1; got strictness="
                             f"{strictness}, max_concurrency={max_concurrency}.")
        self.embeddings = embeddings
        self.strictness, self.max_concurrency = strictness, max_concurrency
        self.failures: list[JudgeFailure] = []

    async def score_all(self, rows: list[RagasInput]) -> list[dict[str, float]]:
        """Faithfulness and answer relevancy for each row (NaN where the judge failed)."""
        gate = asyncio.Semaphore(self.max_concurrency)
        async with self._session() as judges:

            async def one(index: int, row: RagasInput) -> dict[str, float]:
                async with gate:
                    return await self._score_row(judges, index, row)

            return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(rows))))

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[_Judges]:
        client = self.config.async_client()
        try:
            llm = claude_llm(client, self.config.model)
            yield _Judges(Faithfulness(llm=llm),
                          AnswerRelevancy(llm=llm, embeddings=self.embeddings,
                                          strictness=self.strictness))
        finally:
            await client.close()

    async def _score_row(self, judges: _Judges, index: int, row: RagasInput) -> dict[str, float]:
        answered = bool(row.answer.strip())
        faithfulness = NAN
        if answered and row.contexts:  # nothing to check an answer against without passages
            faithfulness = await self._guard(index, "faithfulness", lambda: (
                judges.faithfulness.ascore(user_input=row.question, response=row.answer,
                                           retrieved_contexts=list(row.contexts))))
        relevancy = NAN
        if answered:
            relevancy = await self._guard(index, "answer_relevancy", lambda: (
                judges.relevancy.ascore(user_input=row.question, response=row.answer)))
        return {"faithfulness": faithfulness, "answer_relevancy": relevancy}

    async def _guard(self, index: int, metric: str,
                     call: Callable[[], Awaitable[Any]]) -> float:
        try:
            result = await call()
        except JUDGE_ERRORS as e:
            error = _describe(e)
            self.failures.append(JudgeFailure(index, metric, error))
            logger.warning("ragas judge failed; score is NaN",
                           extra={"row": index, "metric": metric, "error": error[:500]})
            return NAN
        return float(result.value)


def _describe(error: Exception) -> str:
    """``Type: message``; for instructor's wrapper, the wrapped cause's type too."""
    cause = error.__cause__
    kind = type(error).__name__
    if isinstance(error, InstructorRetryException) and cause is not None:
        kind += f" ({type(cause).__name__}: judge output is not the JSON ragas asked for)"
    return f"{kind}: {error}"


def judge_from_settings(settings: Settings, *, embedder: Embedder | None = None,
                        **options: Any) -> RagasJudge | None:
    """A ``RagasJudge`` for the configured Claude (``JudgeConfig.from_settings``), or None when
    no Anthropic key is set.

    ``embedder`` defaults to the process-wide local model (``get_embedder(settings)``);
    ``options`` go to ``RagasJudge`` (``strictness``, ``max_concurrency``).
    """
    config = JudgeConfig.from_settings(settings)
    if config is None:
        return None
    if embedder is None:
        from app.knowledge.embedder import get_embedder

        embedder = get_embedder(settings)
    return RagasJudge(config.api_key, config.model, RagasEmbeddings(embedder),
                      base_url=config.base_url, timeout=config.timeout,
                      max_retries=config.max_retries, **options)


# -- entry points -------------------------------------------------------------------------------


async def aragas_scores(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, *,
                        llm_judge: RagasJudge | None = None) -> list[dict[str, float]]:
    """``ragas_scores`` for callers already inside an event loop."""
    inputs = [parse_row(r, i) for i, r in enumerate(_records(rows))]
    offline = OfflineMetrics()
    scores = [await offline.score(row) for row in inputs]
    if llm_judge is not None and inputs:
        before = len(llm_judge.failures)
        for row_scores, judged in zip(scores, await llm_judge.score_all(inputs), strict=True):
            row_scores.update(judged)
        failed = len(llm_judge.failures) - before
        if failed:
            logger.warning("ragas judge: %d of %d LLM scores failed (NaN)", failed,
                           len(inputs) * len(LLM_METRICS),
                           extra={"failed": failed, "rows": len(inputs)})
    return scores


def ragas_scores(rows: Iterable[Mapping[str, Any]] | pd.DataFrame, *,
                 llm_judge: RagasJudge | None = None) -> list[dict[str, float]]:
    """One dict of ragas scores per row: ``OFFLINE_METRICS``, plus ``LLM_METRICS`` with a judge.

    Every row is validated before anything is scored (``ValueError`` naming the field and fix).

    Example:
        >>> gold = "Refunds are accepted within 30 days of delivery."
        >>> ragas_scores([{"question": "Refund window?", "answer": "You have 30 days.",
        ...                "contexts": [gold, "Shipping is free."], "reference_contexts": [gold],
        ...                "reference": "Refunds are accepted within 30 days."}])
        [{'context_precision': 0.9999999999, 'context_recall': 1.0,
          'string_similarity': 0.361..., 'rouge_l': 0.4}]
    """
    return _run(aragas_scores(rows, llm_judge=llm_judge))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running loop (a notebook): use a worker thread with its own loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
