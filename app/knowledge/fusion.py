"""Pure ranking helpers: score fusion (convex or reciprocal-rank) and per-article aggregation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence


def rrf(rankings: Sequence[tuple[Sequence[str], float]], k: int = 60) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: ``score(d) = Σ w / (k + rank(d))`` (rank from 1).

    >>> sorted(rrf([(["a", "b"], 1.0), (["b", "c"], 1.0)], k=0).items())
    [('a', 1.0), ('b', 1.5), ('c', 0.5)]
    """
    scores: dict[str, float] = {}
    for ranked, weight in rankings:
        for rank, item in enumerate(ranked, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return scores


def convex(dense: Mapping[str, float], lexical: Mapping[str, float],
           weight: float) -> dict[str, float]:
    """``cosine + weight · bm25 / max bm25`` for every item in either mapping.

    BM25 is divided by the query's best BM25 score, so it lies in [0, 1] whatever the corpus
    and the query length, like a cosine; an item missing from ``lexical`` scores 0 there.
    Every item needs its cosine (``dense`` covers the union).

    >>> convex({"a": 0.5, "b": 0.25}, {"b": 8.0, "a": 2.0}, 0.5)
    {'a': 0.625, 'b': 0.75}
    """
    top = max(lexical.values(), default=0.0)
    scale = weight / top if top > 0 else 0.0
    return {item: cos + scale * lexical.get(item, 0.0) for item, cos in dense.items()}


def aggregate(
    chunk_scores: Mapping[str, float], group_of: Callable[[str], str], decay: float = 0.0
) -> list[tuple[str, float, str]]:
    """Collapse chunk scores to one score per group (article), best first.

    The group's score is its best chunk's plus ``decay`` times each further chunk's score
    (``decay=0`` is "best chunk wins"). Returns ``(group, score, best_chunk_id)``.

    >>> aggregate({"a::1": 3.0, "a::2": 1.0, "b::1": 2.5}, lambda c: c.split("::")[0], 0.5)
    [('a', 3.5, 'a::1'), ('b', 2.5, 'b::1')]
    """
    best: dict[str, tuple[float, str]] = {}
    extra: dict[str, float] = {}
    for cid, score in sorted(chunk_scores.items(), key=lambda kv: -kv[1]):
        group = group_of(cid)
        if group not in best:
            best[group] = (score, cid)
        else:
            extra[group] = extra.get(group, 0.0) + decay * score
    out = [(g, s + extra.get(g, 0.0), cid) for g, (s, cid) in best.items()]
    out.sort(key=lambda t: -t[1])
    return out
