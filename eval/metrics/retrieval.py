"""Retrieval quality against gold article ids: per question, per mode, per variant.

Definitions (``ranked`` = the retrieved article ids in rank order, ``gold`` = the gold ids):

- **recall@k** (hit-style) = 1 if any gold article is among the first ``k`` retrieved, else 0
  (``recall_at``); with one gold article (most cases) it equals the textbook recall@k.
- **MRR** = mean over questions of 1 / rank of the first gold article retrieved (0 when none is;
  per question ``reciprocal_rank``).
- **nDCG@k** = DCG@k / IDCG@k with binary relevance and a log2 discount:
  ``DCG@k = Σ_{i=1..k} rel_i / log2(i + 1)`` where ``rel_i`` is 1 when the article at rank ``i``
  is gold (counted at its first occurrence only, so repeats cannot push nDCG above 1), and
  ``IDCG@k = Σ_{i=1..min(k, |gold|)} 1 / log2(i + 1)``, the DCG of a ranking with every gold
  article on top.

Two uses, one set of definitions: ``evaluate_retrieval`` scores each retrieval mode of a
knowledge base on labelled questions (``supportbot eval retrieval``, calibration, the
benchmarks), and ``retrieval_table`` scores the articles retrieved for each evaluation case's
final turn, per variant. There, a case without gold articles (out-of-scope, some ambiguous cases)
has nothing to retrieve: its scores are NaN and the table leaves it out (``n`` counts the cases
scored).

Only the tables need pandas (the ``eval`` extra); scoring a knowledge base does not.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from app.errors import SourceError
from eval.metrics import id_list, mean_or_nan, require_columns, variants_of
from pipelines.loaders import iter_jsonl

if TYPE_CHECKING:
    import pandas as pd

    from app.container import Knowledge
    from app.knowledge.retriever import Mode

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
MODES: tuple[str, ...] = ("lexical", "dense", "hybrid")  # app.knowledge.retriever.Mode
_COLUMNS = ("variant", "gold_article_ids", "retrieved_ids")


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be a positive number of results, got {k}")


def recall_at(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """1.0 if any gold id is in the first ``k`` results (the usual 'hit@k' for QA retrieval).

    >>> recall_at(["a", "b", "c"], {"c"}, 2), recall_at(["a", "b", "c"], {"c"}, 3)
    (0.0, 1.0)
    """
    return 1.0 if any(r in gold for r in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Collection[str]) -> float:
    """1/rank of the first gold id, 0 when none is retrieved.

    >>> reciprocal_rank(["a", "b"], {"b"})
    0.5
    """
    for i, r in enumerate(ranked, start=1):
        if r in gold:
            return 1.0 / i
    return 0.0


def recall_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Hit-style recall@k: 1.0 if a gold id is in ``ranked[:k]``, else 0.0; NaN with no gold.

    >>> recall_at_k(["a", "b", "c"], {"c"}, 2), recall_at_k(["a", "b", "c"], {"c"}, 3)
    (0.0, 1.0)
    """
    _check_k(k)
    if not gold:
        return math.nan
    return recall_at(ranked, set(gold), k)


def mrr(ranked: Sequence[str], gold: Collection[str]) -> float:
    """One case's reciprocal rank (1/rank of the first gold id, 0 if none); NaN with no gold.

    The mean of this over cases is the MRR reported by ``retrieval_table``.

    >>> mrr(["a", "b"], {"b"})
    0.5
    """
    if not gold:
        return math.nan
    return reciprocal_rank(ranked, set(gold))


def ndcg_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """nDCG@k with binary relevance and a log2 discount (see the module doc); NaN with no gold.

    >>> round(ndcg_at_k(["x", "g"], {"g"}, 2), 4)  # (1/log2 3) / (1/log2 2)
    0.6309
    """
    _check_k(k)
    gold_set = set(gold)
    if not gold_set:
        return math.nan
    seen: set[str] = set()
    dcg = 0.0
    for i, article in enumerate(ranked[:k], start=1):
        if article in gold_set and article not in seen:
            seen.add(article)
            dcg += 1.0 / math.log2(i + 1)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(gold_set)) + 1))
    return dcg / ideal


def score_names(ks: Sequence[int] = DEFAULT_KS) -> list[str]:
    """Column names of the per-case scores, e.g. ``recall@1 … mrr ndcg@1 …``."""
    return [f"recall@{k}" for k in ks] + ["mrr"] + [f"ndcg@{k}" for k in ks]


def retrieval_scores(df: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS) -> pd.DataFrame:
    """Per-row scores (columns from ``score_names``), NaN for rows without gold; index kept."""
    import pandas as pd

    require_columns(df, _COLUMNS, "retrieval_scores")
    for k in ks:
        _check_k(k)
    records = []
    for _, row in df.iterrows():
        ranked = id_list(row["retrieved_ids"], "retrieved_ids")
        gold = set(id_list(row["gold_article_ids"], "gold_article_ids"))
        scores = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in ks}
        scores["mrr"] = mrr(ranked, gold)
        scores.update({f"ndcg@{k}": ndcg_at_k(ranked, gold, k) for k in ks})
        records.append(scores)
    return pd.DataFrame(records, index=df.index, columns=score_names(ks), dtype=float)


def retrieval_table(df: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS) -> pd.DataFrame:
    """Mean recall@k, MRR and nDCG@k per variant over the rows that have gold ids.

    Args:
        df: the runner's rows; needs ``variant``, ``gold_article_ids`` and ``retrieved_ids``.
        ks: cut-offs for recall and nDCG.

    Returns:
        One row per variant (order of first appearance): ``variant``, ``n`` (cases with gold)
        and the ``score_names(ks)`` columns; NaN where a variant has no case with gold.

    Example:
        >>> rows = pd.DataFrame({"variant": ["a"], "gold_article_ids": [["g"]],
        ...                      "retrieved_ids": [["x", "g"]]})
        >>> retrieval_table(rows, ks=(1,))[["n", "recall@1", "mrr"]].iloc[0].tolist()
        [1.0, 0.0, 0.5]
    """
    import pandas as pd

    scores = retrieval_scores(df, ks)
    out = []
    for variant in variants_of(df):
        mine = scores[df["variant"] == variant]
        scored = mine.dropna(subset=["mrr"])
        row: dict[str, object] = {"variant": variant, "n": len(scored)}
        row.update({name: mean_or_nan(scored[name]) for name in score_names(ks)})
        out.append(row)
    return pd.DataFrame(out, columns=["variant", "n", *score_names(ks)])


# -- a knowledge base's retrieval modes on labelled questions ----------------------------------


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Questions with ``id``, ``question`` and ``gold_article_ids`` (bad lines raise)."""
    rows = []
    for n, row in iter_jsonl(path):
        if not isinstance(row, dict) or not row.get("question") or \
                not row.get("gold_article_ids"):
            raise SourceError(str(path), "each line needs 'question' and 'gold_article_ids'", n)
        rows.append(row)
    return rows


def evaluate_retrieval(knowledge: Knowledge, rows: list[dict[str, Any]], k: int = 10,
                       modes: Sequence[str] = MODES) -> dict[str, Any]:
    """Mean recall@1, @5, @k and MRR (over the first ``k``) per retrieval mode over ``rows``.

    Args:
        knowledge: the knowledge base and its retriever (``app.container.knowledge``).
        rows: ``load_questions`` rows.
        k: the cut-off reported besides 1 and 5.
        modes: ``lexical``, ``dense`` and/or ``hybrid`` (default: all three); another name
            is a ``ValueError``.

    Returns:
        ``{"n": len(rows), "k": k, "modes": {mode: {"recall@1": …, "recall@5": …,
        "recall@k": …, "mrr": …}}}``.
    """
    _check_k(k)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown retrieval mode(s) {unknown}; use lexical, dense and/or "
                         "hybrid")
    questions = [str(r["question"]) for r in rows]
    vectors = knowledge.kb.embedder.embed_documents(questions)
    report: dict[str, Any] = {"n": len(rows), "k": k, "modes": {}}
    cutoffs = sorted({1, 5, k})  # each cutoff counted once, whatever k is
    for mode in modes:
        totals = {f"recall@{c}": 0.0 for c in cutoffs} | {"mrr": 0.0}
        for row, vec in zip(rows, vectors, strict=True):
            gold = set(row["gold_article_ids"])
            ranked = [r.article_id for r in knowledge.retriever.search(
                row["question"], max(k, 5), mode=cast("Mode", mode), vector=vec)]
            for c in cutoffs:
                totals[f"recall@{c}"] += recall_at(ranked, gold, c)
            totals["mrr"] += reciprocal_rank(ranked[:k], gold)
        report["modes"][mode] = {name: v / max(1, len(rows)) for name, v in totals.items()}
    return report
