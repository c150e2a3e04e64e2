"""Retrieval quality of the articles retrieved for each case's final turn, against gold ids.

Definitions (``ranked`` = ``retrieved_ids`` in rank order, ``gold`` = ``gold_article_ids``):

- **recall@k** (hit-style) = 1 if any gold article is among the first ``k`` retrieved, else 0.
  This is ``eval.retrieval.recall_at``, the figure ``supportbot eval retrieval`` prints, so the
  offline tables and the retrieval CLI agree; with one gold article (most cases) it equals the
  textbook recall@k.
- **MRR** = mean over cases of 1 / rank of the first gold article retrieved (0 when none is);
  per case this is ``eval.retrieval.reciprocal_rank``.
- **nDCG@k** = DCG@k / IDCG@k with binary relevance and a log2 discount:
  ``DCG@k = Σ_{i=1..k} rel_i / log2(i + 1)`` where ``rel_i`` is 1 when the article at rank ``i``
  is gold (counted at its first occurrence only, so repeats cannot push nDCG above 1), and
  ``IDCG@k = Σ_{i=1..min(k, |gold|)} 1 / log2(i + 1)``, the DCG of a ranking with every gold
  article on top.

A case without gold articles (out-of-scope, some ambiguous cases) has nothing to retrieve: its
scores are NaN and the per-variant table leaves it out (``n`` counts the cases scored).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import pandas as pd

from eval.metrics import id_list, mean_or_nan, require_columns, variants_of
from eval.retrieval import recall_at, reciprocal_rank

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
_COLUMNS = ("variant", "gold_article_ids", "retrieved_ids")


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be a positive number of results, got {k}")


def recall_at_k(ranked: Sequence[str], gold: Collection[str], k: int) -> float:
    """Hit-style recall@k: 1.0 if a gold id is in ``ranked[:k]``, else 0.0; NaN with no gold.

    >>> recall_at_k(["a", "b", "c"], {"c"}, 2), recall_at_k(["a", "b", "c"], {"c"}, 3)
    (0.0, 1.0)
    """
    _check_k(k)
    if not gold:
        return math.nan
    return recall_at(list(ranked), set(gold), k)


def mrr(ranked: Sequence[str], gold: Collection[str]) -> float:
    """One case's reciprocal rank (1/rank of the first gold id, 0 if none); NaN with no gold.

    The mean of this over cases is the MRR reported by ``retrieval_table``.

    >>> mrr(["a", "b"], {"b"})
    0.5
    """
    if not gold:
        return math.nan
    return reciprocal_rank(list(ranked), set(gold))


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
    scores = retrieval_scores(df, ks)
    out = []
    for variant in variants_of(df):
        mine = scores[df["variant"] == variant]
        scored = mine.dropna(subset=["mrr"])
        row: dict[str, object] = {"variant": variant, "n": len(scored)}
        row.update({name: mean_or_nan(scored[name]) for name in score_names(ks)})
        out.append(row)
    return pd.DataFrame(out, columns=["variant", "n", *score_names(ks)])
