"""Run labelled cases through the turn policy, for each variant, one row per case × variant.

Each case is a conversation of the real ``ConversationService`` (over the store it was given:
``eval.experiment`` passes a temporary one), its turns posted one by one as a customer would,
so the evaluation measures exactly the path production runs: the same message checks, history,
clarified / failed-turn state and persistence. Same retrieval, same data, same order for every
variant; the offline path is deterministic.
Rows are appended to ``rows.jsonl`` in the output directory as they finish, so an interrupted
run resumes where it stopped; the complete table is written as Parquet and CSV at the end.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from app.domain import Channel, Reply
from app.knowledge.retriever import Retriever
from app.mappers import reply_to_eval
from app.responder.variants import Variant
from app.services.conversations import ConversationService
from eval.datasets import EvalCase

ROWS_FILE = "rows.jsonl"


class Judge(Protocol):
    """Decides whether an answer is correct given the reference (e.g. Claude as judge)."""

    def __call__(self, question: str, reference: str, answer: str) -> bool | None: ...


def run_case(service: ConversationService, case: EvalCase, variant: Variant) -> list[Reply]:
    """The case as one conversation on ``variant``: its turns posted one by one."""
    channel = case.channel if case.channel in set(Channel) else Channel.WEB
    conv, _ = service.start(f"eval-{case.id}-{uuid.uuid4().hex[:8]}", channel,
                            variant=variant.name, metadata={"eval_case": case.id})
    return [service.post(conv.id, message).reply for message in case.turns]


def gold_passages(retriever: Retriever, case: EvalCase) -> list[str]:
    """The texts of the gold articles' passages (ragas's reference contexts)."""
    return [text for doc in case.gold_article_ids for text in retriever.article_texts(doc)]


def row_for(case: EvalCase, variant: Variant, replies: list[Reply]) -> dict[str, Any]:
    """The runner's output row (the columns eval.metrics expects)."""
    final = replies[-1]
    gold = set(case.gold_article_ids)
    resolved_at = next((i for i, r in enumerate(replies, start=1)
                        if r.decision == "answer" and gold & set(r.cited_article_ids)), None)
    escalations = [r for r in replies if r.decision == "escalate"]
    return {
        "case_id": case.id, "variant": variant.name, "kind": case.kind, "tier": case.tier,
        "category": case.category, "channel": case.channel, "persona": case.persona,
        "gold_sentiment": case.sentiment, "needs_human": case.needs_human,
        "human_reason": case.human_reason, "gold_article_ids": list(case.gold_article_ids),
        "reference_answer": case.reference_answer, "question": case.turns[-1],
        "n_turns": len(case.turns), **reply_to_eval(final),
        "escalated": bool(escalations), "clarified": any(r.decision == "clarify" for r in replies),
        "escalation_reason": escalations[0].reason if escalations else None,
        "latency_ms": float(np.mean([r.latency_ms for r in replies])),
        "sentiment_scores": [float(r.sentiment) for r in replies],
        "turns_to_resolution": resolved_at,
        "input_tokens": sum(r.usage.input_tokens for r in replies if r.usage),
        "output_tokens": sum(r.usage.output_tokens for r in replies if r.usage),
    }


def _done(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a row cut off by the interruption is simply redone
            rows[(row["case_id"], row["variant"])] = row
    return rows


def _drop_partial_line(path: Path) -> None:
    """An interrupted write can leave half a row at the end; cut it so appends stay valid."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def run_eval(
    service: ConversationService, cases: Sequence[EvalCase], variants: Sequence[Variant],
    out_dir: Path,
    *, embed: Callable[[list[str]], np.ndarray] | None = None, judge: Judge | None = None,
    resume: bool = True, progress: bool | None = None,
) -> pd.DataFrame:
    """Every case × variant through ``service``; returns (and writes) the rows table.

    Args:
        embed: texts → normalised vectors, for the answer-vs-reference ``similarity`` (the
            offline judge); ``None`` leaves similarity empty.
        judge: an LLM judge for ``judge_correct`` (``None`` offline).
        resume: keep rows already in ``out_dir/rows.jsonl`` and run only the missing ones.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_path = out_dir / ROWS_FILE
    if not resume and rows_path.exists():
        rows_path.unlink()
    done = _done(rows_path)
    _drop_partial_line(rows_path)
    todo = [(c, v) for c in cases for v in variants if (c.id, v.name) not in done]
    with rows_path.open("a", encoding="utf-8") as sink:
        for case, variant in tqdm(todo, desc="eval", unit="case", disable=None
                                  if progress is None else not progress, leave=False):
            started = time.perf_counter()
            row = row_for(case, variant, run_case(service, case, variant))
            row["reference_contexts"] = gold_passages(service.responder.retriever, case)
            row["similarity"] = _similarity(embed, row["answer"], case.reference_answer)
            row["judge_correct"] = (judge(case.turns[-1], case.reference_answer, row["answer"])
                                    if judge is not None and case.reference_answer else None)
            row["wall_ms"] = (time.perf_counter() - started) * 1000
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()
            done[(case.id, variant.name)] = row
    order = {(c.id, v.name): i for i, (c, v) in enumerate((c, v) for c in cases
                                                           for v in variants)}
    table = pd.DataFrame([done[k] for k in sorted(done, key=lambda k: order.get(k, 1 << 30))
                          if k in order])
    table.to_parquet(out_dir / "rows.parquet", index=False)
    table.to_csv(out_dir / "rows.csv", index=False)
    return table


def _similarity(embed: Callable[[list[str]], np.ndarray] | None, answer: str,
                reference: str) -> float | None:
    if embed is None or not answer or not reference:
        return None
    a, b = embed([answer, reference])
    return float(np.clip(a @ b, -1.0, 1.0))
