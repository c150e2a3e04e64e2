"""Retrieval evaluation: recall@k and MRR against gold article ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.errors import SourceError
from app.knowledge.base import KnowledgeBase
from pipelines.loaders import iter_jsonl


def recall_at(ranked: list[str], gold: set[str], k: int) -> float:
    """1.0 if any gold id is in the first ``k`` results (the usual 'hit@k' for QA retrieval).

    >>> recall_at(["a", "b", "c"], {"c"}, 2), recall_at(["a", "b", "c"], {"c"}, 3)
    (0.0, 1.0)
    """
    return 1.0 if any(r in gold for r in ranked[:k]) else 0.0


def reciprocal_rank(ranked: list[str], gold: set[str]) -> float:
    """1/rank of the first gold id, 0 when none is retrieved.

    >>> reciprocal_rank(["a", "b"], {"b"})
    0.5
    """
    for i, r in enumerate(ranked, start=1):
        if r in gold:
            return 1.0 / i
    return 0.0


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Questions with ``id``, ``question`` and ``gold_article_ids`` (bad lines raise)."""
    rows = []
    for n, row in iter_jsonl(path):
        if not isinstance(row, dict) or not row.get("question") or \
                not row.get("gold_article_ids"):
            raise SourceError(str(path), "each line needs 'question' and 'gold_article_ids'", n)
        rows.append(row)
    return rows


def evaluate_retrieval(
    kb: KnowledgeBase, rows: list[dict[str, Any]], k: int = 10,
    modes: list[str] | None = None, retriever: Any = None,
) -> dict[str, Any]:
    """Mean recall@1, @5, @k and MRR per mode over ``rows``."""
    from app.knowledge.retriever import HybridRetriever

    retriever = retriever or HybridRetriever(kb)
    questions = [str(r["question"]) for r in rows]
    vectors = kb.embedder.embed_documents(questions)
    report: dict[str, Any] = {"n": len(rows), "k": k, "modes": {}}
    cutoffs = sorted({1, 5, k})  # each cutoff counted once, whatever k is
    for mode in modes or ["lexical", "dense", "hybrid"]:
        totals = {f"recall@{c}": 0.0 for c in cutoffs} | {"mrr": 0.0}
        for row, vec in zip(rows, vectors, strict=True):
            gold = set(row["gold_article_ids"])
            ranked = [r.article_id for r in retriever.search(
                row["question"], max(k, 5), mode=mode, vector=vec)]
            for c in cutoffs:
                totals[f"recall@{c}"] += recall_at(ranked, gold, c)
            totals["mrr"] += reciprocal_rank(ranked[:k], gold)
        report["modes"][mode] = {name: v / max(1, len(rows)) for name, v in totals.items()}
    return report
