"""Reciprocal-rank fusion and per-article aggregation, with hand-computed numbers."""

from __future__ import annotations

import pytest

from app.knowledge.fusion import aggregate, convex, rrf


def article(chunk_id: str) -> str:
    return chunk_id.split("::")[0]


def test_rrf_single_ranking_k0() -> None:
    assert rrf([(["a", "b", "c"], 1.0)], k=0) == pytest.approx({"a": 1.0, "b": 0.5, "c": 1 / 3})


def test_rrf_two_rankings_default_k() -> None:
    scores = rrf([(["a", "b"], 1.0), (["b", "c"], 1.0)])
    # k=60: a = 1/61, b = 1/62 + 1/61, c = 1/62
    assert scores == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})
    assert max(scores, key=scores.__getitem__) == "b"


def test_rrf_weights() -> None:
    scores = rrf([(["x", "y"], 2.0), (["y"], 0.5)], k=10)
    # x = 2/11 = 0.1818; y = 2/12 + 0.5/11 = 0.2121: agreement beats one strong vote
    assert scores == pytest.approx({"x": 2 / 11, "y": 2 / 12 + 0.5 / 11})
    assert scores["y"] > scores["x"]
    # with the second ranking weighted to nothing, order follows the first ranking
    light = rrf([(["x", "y"], 2.0), (["y"], 0.0)], k=10)
    assert light["x"] > light["y"]


def test_rrf_empty() -> None:
    assert rrf([]) == {}
    assert rrf([([], 1.0)]) == {}


def test_aggregate_best_chunk_wins_with_zero_decay() -> None:
    out = aggregate({"a::1": 0.3, "a::2": 0.2, "b::1": 0.25, "c::9": 0.1}, article)
    assert out == [("a", 0.3, "a::1"), ("b", 0.25, "b::1"), ("c", 0.1, "c::9")]


def test_aggregate_with_decay_adds_further_chunks() -> None:
    out = aggregate({"a::1": 3.0, "a::2": 1.0, "a::3": 0.5, "b::1": 3.6}, article, decay=0.5)
    # a = 3.0 + 0.5*1.0 + 0.5*0.5 = 3.75 beats b = 3.6; a's best chunk is a::1
    assert [(g, c) for g, _, c in out] == [("a", "a::1"), ("b", "b::1")]
    assert [s for _, s, _ in out] == pytest.approx([3.75, 3.6])


def test_aggregate_one_entry_per_group_sorted() -> None:
    chunks = {f"doc{i % 3}::{i}": float(i) for i in range(9)}
    out = aggregate(chunks, article)
    assert [g for g, _, _ in out] == ["doc2", "doc1", "doc0"]
    assert [c for _, _, c in out] == ["doc2::8", "doc1::7", "doc0::6"]
    assert aggregate({}, article) == []


def test_rrf_then_aggregate_like_the_retriever() -> None:
    dense = ["a::1", "b::1", "a::2"]
    lexical = ["b::1", "c::1"]
    fused = rrf([(dense, 1.0), (lexical, 1.0)], k=60)
    out = aggregate(fused, article)
    # b::1 = 1/62 + 1/61; a::1 = 1/61; c::1 = 1/62; a::2 = 1/63 (not counted, decay 0)
    assert [(g, c) for g, _, c in out] == [("b", "b::1"), ("a", "a::1"), ("c", "c::1")]
    assert [s for _, s, _ in out] == pytest.approx([1 / 62 + 1 / 61, 1 / 61, 1 / 62])


def test_convex_adds_bm25_divided_by_the_best_bm25() -> None:
    scores = convex({"a": 0.6, "b": 0.5, "c": 0.4}, {"b": 12.0, "c": 6.0}, weight=0.2)
    # a = 0.6 (no BM25); b = 0.5 + 0.2 * 12/12 = 0.7; c = 0.4 + 0.2 * 6/12 = 0.5
    assert scores == pytest.approx({"a": 0.6, "b": 0.7, "c": 0.5})
    assert max(scores, key=scores.__getitem__) == "b"


def test_convex_is_blind_to_the_bm25_scale() -> None:
    dense = {"a": 0.6, "b": 0.5}
    small = convex(dense, {"a": 0.5, "b": 1.0}, 0.3)
    large = convex(dense, {"a": 25.0, "b": 50.0}, 0.3)  # a longer query, a bigger corpus
    assert small == pytest.approx(large)


def test_convex_weight_trades_the_signals() -> None:
    dense, lexical = {"a": 0.62, "b": 0.55}, {"b": 9.0, "a": 1.0}
    assert max(convex(dense, lexical, 0.05).items(), key=lambda kv: kv[1])[0] == "a"
    assert max(convex(dense, lexical, 0.3).items(), key=lambda kv: kv[1])[0] == "b"


def test_convex_without_bm25_is_the_cosine() -> None:
    assert convex({"a": 0.3, "b": 0.2}, {}, 0.5) == {"a": 0.3, "b": 0.2}
    assert convex({"a": 0.3}, {"a": 0.0}, 0.5) == {"a": 0.3}
    assert convex({}, {}, 0.5) == {}
