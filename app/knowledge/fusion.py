"""Pure ranking helpers: reciprocal-rank fusion and per-article aggregation."""

from __future__ import annotations

from collections.abc import Callable, Sequence


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


def aggregate(
    chunk_scores: dict[str, float], group_of: Callable[[str], str], decay: float = 0.0
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
