"""Retrieval metrics on tiny hand-computed rankings."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from eval.metrics.retrieval import (
    mrr,
    ndcg_at_k,
    recall_at,
    recall_at_k,
    reciprocal_rank,
    retrieval_scores,
    retrieval_table,
    score_names,
)

LOG2_3 = math.log2(3)  # discount at rank 2


def test_recall_at_k_is_the_retrieval_clis_hit_rate() -> None:
    ranked = ["a", "b", "c"]
    assert recall_at_k(ranked, {"c"}, 2) == 0.0  # c is third
    assert recall_at_k(ranked, {"c"}, 3) == 1.0
    assert recall_at_k(ranked, {"b", "z"}, 2) == 1.0  # one gold of two is enough (hit-style)
    for k in (1, 2, 3):
        assert recall_at_k(ranked, {"b"}, k) == recall_at(ranked, {"b"}, k)


def test_mrr_per_case() -> None:
    assert mrr(["a", "b", "c"], {"b", "c"}) == 0.5  # first gold at rank 2
    assert mrr(["a", "b"], {"z"}) == 0.0  # none retrieved
    assert mrr(["a", "b"], {"a"}) == reciprocal_rank(["a", "b"], {"a"}) == 1.0


def test_no_gold_is_nan_not_zero() -> None:
    assert math.isnan(recall_at_k(["a"], set(), 1))
    assert math.isnan(mrr(["a"], []))
    assert math.isnan(ndcg_at_k(["a"], set(), 3))


def test_ndcg_three_items_by_hand() -> None:
    # ranked [x, g1, g2], gold {g1, g2}, k=3:
    #   DCG  = 0 + 1/log2(3) + 1/log2(4) = 0.63093 + 0.5 = 1.13093
    #   IDCG = 1/log2(2) + 1/log2(3) (min(k, |gold|) = 2 slots) = 1.63093
    #   nDCG = 1.13093 / 1.63093 = 0.69343
    got = ndcg_at_k(["x", "g1", "g2"], {"g1", "g2"}, 3)
    assert got == pytest.approx((1 / LOG2_3 + 0.5) / (1 + 1 / LOG2_3))
    assert got == pytest.approx(0.69343, abs=1e-5)


def test_ndcg_ideal_uses_min_k_and_gold() -> None:
    gold = {"g1", "g2", "g3"}
    assert ndcg_at_k(["g1", "x", "y"], gold, 1) == 1.0  # IDCG@1 = 1 although |gold| = 3
    # k=3: DCG = 1, IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.13093 → 0.46928
    assert ndcg_at_k(["g1", "x", "y"], gold, 3) == pytest.approx(0.46928, abs=1e-5)
    assert ndcg_at_k(["x", "y"], gold, 2) == 0.0
    assert ndcg_at_k(["g", "g"], {"g"}, 2) == 1.0  # a repeat is not counted twice


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        recall_at_k(["a"], {"a"}, 0)


def _rows() -> pd.DataFrame:
    return pd.DataFrame([
        {"variant": "a", "gold_article_ids": ["g"], "retrieved_ids": ["g", "x"]},
        {"variant": "a", "gold_article_ids": ["g"], "retrieved_ids": ["x", "y", "g"]},
        {"variant": "a", "gold_article_ids": [], "retrieved_ids": ["x"]},  # out of scope
        {"variant": "b", "gold_article_ids": [], "retrieved_ids": ["x"]},
    ])


def test_retrieval_table_by_hand() -> None:
    table = retrieval_table(_rows(), ks=(1, 5)).set_index("variant")
    a = table.loc["a"]
    assert a["n"] == 2  # the row without gold is left out
    assert a["recall@1"] == 0.5  # (1 + 0) / 2
    assert a["recall@5"] == 1.0  # (1 + 1) / 2
    assert a["mrr"] == pytest.approx(2 / 3)  # (1/1 + 1/3) / 2
    assert a["ndcg@5"] == pytest.approx(0.75)  # (1 + 1/log2(4)) / 2
    b = table.loc["b"]
    assert b["n"] == 0
    assert math.isnan(b["recall@1"]) and math.isnan(b["mrr"])
    assert list(table.columns) == ["n", *score_names((1, 5))]


def test_retrieval_scores_keep_the_index_and_nan_without_gold() -> None:
    rows = _rows()
    scores = retrieval_scores(rows, ks=(1,))
    assert list(scores.index) == list(rows.index)
    assert scores.loc[1, "mrr"] == pytest.approx(1 / 3)
    assert math.isnan(scores.loc[2, "recall@1"])


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="'retrieved_ids'"):
        retrieval_table(pd.DataFrame({"variant": ["a"], "gold_article_ids": [["g"]]}))
