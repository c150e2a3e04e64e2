"""Step 3 of a turn: generate. The passages the answer model is given, the model's stream with
the fallback model taking over when it fails, and the clarifying question when the rules ask
for one."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from functools import lru_cache

from app.errors import ProviderError
from app.knowledge.lexical import tokenize
from app.knowledge.retriever import Retriever, SearchResult
from app.responder.providers.base import AnswerModel
from app.responder.retrieval import Retrieved
from app.responder.types import AnswerRequest, ModelAnswer, Passage

log = logging.getLogger("supportbot.responder")
LEXICAL_BONUS = 0.1  # weight of the question's words found in a passage (0..1 share)
_STEP_LINE = re.compile(r"^\s*\d+[.)]\s", re.M)
_PROCEDURAL = re.compile(r"\b(how|steps?|where do i|can i|change|cancel|reset|set ?up|start|"
                         r"turn on|turn off|enable|update|pause|switch|print|request)\b", re.I)


@lru_cache(maxsize=8192)
def _terms(text: str) -> frozenset[str]:
    """Stemmed terms of a text (passages recur across answers: tokenised once)."""
    return frozenset(tokenize([text])[0])


@lru_cache(maxsize=8192)
def _has_steps(text: str) -> bool:
    return bool(_STEP_LINE.search(text))


def rank_article_passages(question: str, scored: list[tuple[Passage, float]]) -> list[Passage]:
    """Order one article's passages for answering: closeness to the question first, with a
    nudge to a numbered procedure when the question asks how to do something."""
    procedural = bool(_PROCEDURAL.search(question))
    terms = set(tokenize([question])[0])

    def key(item: tuple[Passage, float]) -> float:
        passage, cosine = item
        bonus = 0.08 if procedural and _has_steps(passage.text) else 0.0
        if terms:  # the question's own words in the section heading or text
            shared = terms & _terms(f"{passage.section} {passage.text}")
            bonus += LEXICAL_BONUS * len(shared) / len(terms)
        return cosine + bonus

    return [p for p, _ in sorted(scored, key=lambda t: -key(t))]


def passages_for(question: str, found: Retrieved, retriever: Retriever) -> list[Passage]:
    """The top article's best passages first, then one passage per other hit."""
    out: list[Passage] = []
    if found.articles:
        top = found.articles[0]
        scored = [(Passage(top.article_id, c.chunk_id, top.title, top.url, c.text, s,
                           "articles", found.confidence, c.section, c.idx), s)
                  for c, s in retriever.article_passages(top.article_id, found.vector, n=8)]
        out += rank_article_passages(question, scored)[:4]
    for r in [*found.articles[1:], *[x for g in found.others for x in g]]:
        out.append(Passage(r.article_id, r.chunk_id, r.title, r.url, r.snippet, r.score,
                           r.collection, 0.0))
    return out


def clarifying_question(results: list[SearchResult], style: str) -> str:
    """Ask which of the likeliest topics the customer means."""
    titles = []
    for r in results:
        if r.collection == "articles" and r.title not in titles:
            titles.append(r.title)
    opener = "Sorry you're dealing with this — " if style == "concise_empathetic" else ""
    if len(titles) >= 2:
        options = f"“{titles[0]}”, “{titles[1]}”"
        return (f"{opener}I want to get this right: is your question about {options}, or "
                "something else? A few more details (an order number, what you see on screen) "
                "help too.")
    return (f"{opener}Could you tell me a bit more — what were you trying to do, and what "
            "happened? An order number helps if it's about an order.")


def generate(model: AnswerModel, fallback: AnswerModel | None,
             request: AnswerRequest) -> Iterator[str | ModelAnswer]:
    """Stream from the primary model; on failure, the fallback answers instead."""
    shown: list[str] = []
    try:
        for event in model.stream(request):
            if isinstance(event, str):
                shown.append(event)
            yield event
        return
    except ProviderError as e:
        if fallback is None:
            raise
        log.warning("answer model %s failed, falling back to %s: %s", model.name,
                    fallback.name, e, extra={"variant": request.variant})
    answer = fallback.answer(request)
    answer.fallback_from = model.name
    if shown:  # the customer already saw part of the first answer: the record says so
        yield "\n\n"
        answer.text = "".join(shown) + "\n\n" + answer.text
        yield answer.text[len("".join(shown)) + 2:]
    else:
        yield answer.text
    yield answer
