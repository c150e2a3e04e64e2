"""One turn of the answer engine: retrieve with context → decide → generate → reply.

``Responder.respond_stream`` is the single implementation; ``respond`` collects it. The
responder is pure apart from its injected collaborators (retriever, query embedder, answer
models), so tests and the eval harness drive it in-process exactly as the API does.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from app.errors import ProviderError
from app.knowledge.lexical import tokenize
from app.knowledge.retriever import HybridRetriever, SearchResult
from app.responder import escalation, sentiment
from app.responder.confidence import confidence
from app.responder.providers.base import AnswerModel
from app.responder.types import AnswerRequest, Decision, ModelAnswer, Passage, Turn, Usage
from app.responder.variants import Variant

log = logging.getLogger("supportbot.responder")
LEXICAL_BONUS = 0.1  # weight of the question's words found in a passage (0..1 share)
_FOLLOW_UP = re.compile(
    r"\b(it|its|it's|that|this|those|they|them|still|again|same|didn'?t|doesn'?t|won'?t|"
    r"not working|what about|and if|also|instead|anyway|yet)\b", re.I)
_FAILED = re.compile(
    r"\b(didn'?t|doesn'?t|does not|did not|not) (work|help|fix|solve)|still (not|doesn'?t|"
    r"hasn'?t|isn'?t|can'?t|won'?t|no)|not helpful|useless|that'?s not (it|what)|wrong answer|"
    r"already (tried|did)|same (problem|issue)|again\b", re.I)
_STEP_LINE = re.compile(r"^\s*\d+[.)]\s", re.M)
_PROCEDURAL = re.compile(r"\b(how|steps?|where do i|can i|change|cancel|reset|set ?up|start|"
                         r"turn on|turn off|enable|update|pause|switch|print|request)\b", re.I)


@dataclass(frozen=True)
class Citation:
    """An article (or past conversation) the reply relies on."""

    id: str
    title: str
    url: str


@dataclass
class TurnInput:
    """What the responder needs to answer one customer message.

    Args:
        message: the new customer message.
        variant: the conversation's variant.
        history: earlier turns, oldest first (not including ``message``).
        clarified_before: the assistant already asked this customer to clarify.
    """

    message: str
    variant: Variant
    history: list[Turn] = field(default_factory=list)
    clarified_before: bool = False


@dataclass
class Reply:
    """The assistant's reply and everything recorded about how it was made."""

    text: str
    decision: Decision
    reason: str | None
    priority: str
    variant: str
    confidence: float
    citations: list[Citation]
    retrieval: list[dict[str, object]]
    provider: str
    model: str
    latency_ms: float
    sentiment: float
    query: str
    usage: Usage | None = None
    fallback_from: str | None = None
    detail: str = ""
    passages: list[Passage] = field(default_factory=list)  # what the model was given

    @property
    def cited_article_ids(self) -> list[str]:
        return [c.id for c in self.citations]


def contextual_query(history: list[Turn], message: str) -> str | None:
    """The message with the customer's previous message prepended, for follow-ups ("it still
    hasn't arrived" → about the order they asked about); ``None`` on a first message.

    >>> contextual_query([Turn("customer", "where is my rug order")], "it still hasn't arrived")
    "where is my rug order it still hasn't arrived"
    """
    prior = [t.text for t in history if t.role == "customer"]
    return f"{prior[-1]} {message}" if prior else None


def is_follow_up(message: str) -> bool:
    """Messages that refer back ("it still hasn't arrived", "what about Plus?") or are too
    short to stand alone ("and now?") lean on what was said before; "what is your return
    policy" does not, however short."""
    return len(message.split()) <= 3 or bool(_FOLLOW_UP.search(message))


def failed_turns(history: list[Turn], message: str) -> int:
    """Consecutive customer messages, ending with ``message``, that say the last answer did
    not solve it (each one following an assistant reply)."""
    count = 0
    texts = [(t.role, t.text) for t in history] + [("customer", message)]
    for i in range(len(texts) - 1, 0, -1):
        role, text = texts[i]
        if role != "customer":
            continue
        if texts[i - 1][0] != "assistant" or not _FAILED.search(text):
            break
        count += 1
    return count


def rank_article_passages(question: str, scored: list[tuple[Passage, float]]) -> list[Passage]:
    """Order one article's passages for answering: closeness to the question first, with a
    nudge to a numbered procedure when the question asks how to do something."""
    procedural = bool(_PROCEDURAL.search(question))
    terms = set(tokenize([question])[0])

    def key(item: tuple[Passage, float]) -> float:
        passage, cosine = item
        bonus = 0.08 if procedural and _STEP_LINE.search(passage.text) else 0.0
        if terms:  # the question's own words in the section heading or text
            shared = terms & set(tokenize([f"{passage.section} {passage.text}"])[0])
            bonus += LEXICAL_BONUS * len(shared) / len(terms)
        return cosine + bonus

    return [p for p, _ in sorted(scored, key=lambda t: -key(t))]


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


class Responder:
    """Answers one customer turn.

    Args:
        retriever: hybrid search over articles and past conversations.
        embed: query → vector (a ``QueryBatcher.embed`` on the serving path).
        model: the primary answer model (Claude when configured, else extractive).
        fallback: answers when ``model`` fails (the extractive model); ``None`` escalates.
        clock: seconds, for latency.
    """

    def __init__(self, retriever: HybridRetriever, embed: Callable[[str], np.ndarray],
                 model: AnswerModel, fallback: AnswerModel | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.retriever = retriever
        self.embed = embed
        self.model = model
        self.fallback = fallback
        self.clock = clock

    def respond(self, turn: TurnInput) -> Reply:
        """The whole reply for one turn."""
        reply = None
        for event in self.respond_stream(turn):
            if isinstance(event, Reply):
                reply = event
        assert reply is not None
        return reply

    def respond_stream(self, turn: TurnInput) -> Iterator[str | Reply]:
        """Text deltas of the reply as they are produced, then the ``Reply``."""
        started = self.clock()
        variant = turn.variant
        settings = variant.retrieval
        query, vector, articles, conf = self._retrieve(turn, settings.k)
        others = [self.retriever.search(query, 2, (c,), vector=vector)
                  for c in settings.collections if c != "articles"]
        prior = [t.text for t in turn.history if t.role == "customer"]
        # Score at most the last 10 customer turns, 2,000 characters each: VADER is
        # superlinear in length and a history field must not be a way to burn CPU.
        recent = [t[:2000] for t in [*prior, turn.message][-10:]]
        trend = sentiment.trend([sentiment.score(t) for t in recent])
        inputs = escalation.EscalationInputs(
            message=turn.message, retrieval_confidence=conf, prior_messages=prior,
            sentiment=trend, failed_turns=failed_turns(turn.history, turn.message),
            clarified_before=turn.clarified_before, thresholds=variant.escalation)
        decision = escalation.decide(inputs)
        record = {"variant": variant.name, "confidence": conf, "query": query,
                  "sentiment": trend.last, "retrieval": _scores(articles, others)}
        if decision.escalate or decision.clarify:
            text = decision.next_steps if decision.escalate else clarifying_question(
                articles, variant.style)
            yield text
            yield Reply(text=text, decision=decision.decision, reason=decision.reason,
                        priority=decision.priority, citations=[], provider="rules",
                        model="escalation-rules", detail=decision.detail,
                        latency_ms=(self.clock() - started) * 1000, **record)  # type: ignore[arg-type]
            return
        request = AnswerRequest(
            question=turn.message, passages=self._passages(turn.message, articles, others,
                                                           vector, conf),
            system_prompt=variant.system_prompt, history=turn.history, style=variant.style,
            variant=variant.name, max_tokens=variant.max_tokens)
        answer: ModelAnswer | None = None
        for event in self._generate(request):
            if isinstance(event, ModelAnswer):
                answer = event
            else:
                yield event
        assert answer is not None
        if answer.needs_human:
            late = escalation.decide(escalation.EscalationInputs(
                **{**inputs.__dict__, "needs_human": True,
                   "needs_human_reason": answer.human_reason}))
            if late.escalate:
                yield "\n\n" + late.next_steps
                answer.text = f"{answer.text}\n\n{late.next_steps}"
                decision = late
        by_id = {p.id: p for p in request.passages}
        # Only articles become customer-facing citations: past conversations are other
        # customers' chats, used for grounding but never shown or linked.
        citations = [Citation(i, by_id[i].title, by_id[i].url) for i in answer.cited_ids
                     if i in by_id and by_id[i].collection == "articles"]
        yield Reply(text=answer.text, decision=decision.decision, reason=decision.reason,
                    priority=decision.priority, citations=citations, provider=answer.provider,
                    model=answer.model, usage=answer.usage, fallback_from=answer.fallback_from,
                    detail=decision.detail, latency_ms=(self.clock() - started) * 1000,
                    passages=request.passages, **record)  # type: ignore[arg-type]

    def _retrieve(self, turn: TurnInput, k: int
                  ) -> tuple[str, np.ndarray, list[SearchResult], float]:
        """Retrieve with the message alone and, for a follow-up, with its context too; keep
        whichever retrieval is more confident. A message that stands on its own (a new topic)
        is never mixed with the previous one."""
        candidates = [turn.message]
        context = contextual_query(turn.history, turn.message)
        if context is not None and is_follow_up(turn.message):
            candidates.append(context)
        best: tuple[str, np.ndarray, list[SearchResult], float] | None = None
        for i, query in enumerate(candidates):
            vector = self.embed(query)
            found = self.retriever.search(query, k, ("articles",), vector=vector)
            conf = confidence(found)
            if i == 1 and best is not None and conf <= best[3]:
                continue
            best = (query, vector, found, conf)
        assert best is not None
        return best

    def _generate(self, request: AnswerRequest) -> Iterator[str | ModelAnswer]:
        """Stream from the primary model; on failure, the fallback answers instead."""
        shown: list[str] = []
        try:
            for event in self.model.stream(request):
                if isinstance(event, str):
                    shown.append(event)
                yield event
            return
        except ProviderError as e:
            if self.fallback is None:
                raise
            log.warning("answer model %s failed, falling back to %s: %s", self.model.name,
                        self.fallback.name, e, extra={"variant": request.variant})
        answer = self.fallback.answer(request)
        answer.fallback_from = self.model.name
        if shown:  # the customer already saw part of the first answer: the record says so
            yield "\n\n"
            answer.text = "".join(shown) + "\n\n" + answer.text
            yield answer.text[len("".join(shown)) + 2:]
        else:
            yield answer.text
        yield answer

    def _passages(self, question: str, articles: list[SearchResult],
                  others: list[list[SearchResult]], vector: np.ndarray,
                  conf: float) -> list[Passage]:
        """The top article's best passages first, then one passage per other hit."""
        out: list[Passage] = []
        if articles:
            top = articles[0]
            scored = [(Passage(top.article_id, c.chunk_id, top.title, top.url, c.text, s,
                               "articles", conf, c.section, c.idx), s)
                      for c, s in self.retriever.article_passages(top.article_id, vector, n=8)]
            out += rank_article_passages(question, scored)[:4]
        for r in articles[1:]:
            out.append(Passage(r.article_id, r.chunk_id, r.title, r.url, r.snippet, r.score,
                               r.collection, 0.0))
        for group in others:
            for r in group:
                out.append(Passage(r.article_id, r.chunk_id, r.title, r.url, r.snippet,
                                   r.score, r.collection, 0.0))
        return out


def _scores(articles: list[SearchResult],
            others: list[list[SearchResult]]) -> list[dict[str, object]]:
    return [{"id": r.article_id, "collection": r.collection, "score": r.score,
             "dense": r.dense_score, "lexical": r.lexical_score}
            for r in [*articles, *[x for g in others for x in g]]]
