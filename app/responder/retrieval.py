"""Step 1 of a turn: retrieve. The message alone and, for a follow-up, with its context; the
more confident retrieval wins. Past conversations are searched with the winning query."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.domain import Role, Turn
from app.knowledge.retriever import Retriever, SearchResult
from app.responder.confidence import Calibration, confidence

_FOLLOW_UP = re.compile(
    r"\b(it|its|it's|that|this|those|they|them|still|again|same|didn'?t|doesn'?t|won'?t|"
    r"not working|what about|and if|also|instead|anyway|yet)\b", re.I)


@dataclass(frozen=True)
class Retrieved:
    """What retrieval found for one turn.

    Args:
        query: the query that won (the message, or the message with its context).
        vector: its embedding.
        articles: the best articles, best first.
        others: per further collection (past conversations), its best hits.
        confidence: calibrated 0..1 confidence that ``articles[0]`` answers the message.
        message_vector: the embedding of the message alone.
    """

    query: str
    vector: np.ndarray
    articles: list[SearchResult]
    others: list[list[SearchResult]]
    confidence: float
    message_vector: np.ndarray  # the message alone (the hand-off intent classifier reads it)

    def scores(self) -> list[dict[str, object]]:
        """Every hit's scores, as the reply records them."""
        return [{"id": r.article_id, "collection": r.collection, "score": r.score,
                 "dense": r.dense_score, "lexical": r.lexical_score}
                for r in [*self.articles, *[x for g in self.others for x in g]]]


def contextual_query(history: list[Turn], message: str) -> str | None:
    """The message with the customer's previous message prepended, for follow-ups ("it still
    hasn't arrived" → about the order they asked about); ``None`` on a first message.

    >>> contextual_query([Turn("customer", "where is my rug order")], "it still hasn't arrived")
    "where is my rug order it still hasn't arrived"
    """
    prior = [t.text for t in history if t.role == Role.CUSTOMER]
    return f"{prior[-1]} {message}" if prior else None


def is_follow_up(message: str) -> bool:
    """Messages that refer back ("it still hasn't arrived", "what about Plus?") or are too
    short to stand alone ("and now?") lean on what was said before; "what is your return
    policy" does not, however short."""
    return len(message.split()) <= 3 or bool(_FOLLOW_UP.search(message))


def retrieve(retriever: Retriever, embed: Callable[[str], np.ndarray], message: str,
             history: list[Turn], k: int, collections: tuple[str, ...],
             calibration: Calibration | None = None) -> Retrieved:
    """Retrieve with the message alone and, for a follow-up, with its context too; keep
    whichever retrieval is more confident. A message that stands on its own (a new topic)
    is never mixed with the previous one."""
    candidates = [message]
    context = contextual_query(history, message)
    if context is not None and is_follow_up(message):
        candidates.append(context)
    best: tuple[str, np.ndarray, list[SearchResult], float] | None = None
    message_vector: np.ndarray | None = None
    for i, query in enumerate(candidates):
        vector = embed(query)
        if i == 0:
            message_vector = vector
        found = retriever.search(query, k, ("articles",), vector=vector)
        conf = confidence(found, query, calibration)
        if i == 1 and best is not None and conf <= best[3]:
            continue
        best = (query, vector, found, conf)
    assert best is not None and message_vector is not None
    query, vector, articles, conf = best
    others = [retriever.search(query, 2, (c,), vector=vector)
              for c in collections if c != "articles"]
    return Retrieved(query, vector, articles, others, conf, message_vector)
