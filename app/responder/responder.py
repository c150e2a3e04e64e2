"""One turn of the answer engine: retrieve → assess → generate → cite.

Each step is a small unit (``retrieval``, ``assess``, ``generate``, ``cite``); ``Responder``
runs them in order over injected collaborators (a ``Retriever``, a query embedder, answer
models), so tests drive it with a fake retriever and the turn policy drives it the same way for
every entry point. ``respond_stream`` yields the reply's text as it is produced, then the
``Reply``; ``respond`` collects it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from app.domain import Decision, Reply, Turn
from app.knowledge.retriever import Retriever
from app.responder.assess import assess
from app.responder.cite import cite
from app.responder.confidence import Calibration
from app.responder.generate import clarifying_question, generate, passages_for
from app.responder.handoff import HandoffModel
from app.responder.providers.base import AnswerModel
from app.responder.retrieval import Retrieved, retrieve
from app.responder.types import AnswerRequest, ModelAnswer
from app.responder.variants import Variant


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


class Responder:
    """Answers one customer turn.

    Args:
        retriever: search over articles and past conversations (``HybridRetriever``).
        embed: query → vector (a ``QueryBatcher.embed`` on the serving path).
        model: the primary answer model (Claude when configured, else extractive).
        fallback: answers when ``model`` fails (the extractive model); ``None`` re-raises.
        handoff: the hand-off intent classifier (``None``: the phrase rules alone).
        calibration: the answer confidence's calibration (``None``: the shipped one; the
            evaluation passes one fitted without the help center it measures).
        clock: seconds, for latency.
    """

    def __init__(self, retriever: Retriever, embed: Callable[[str], np.ndarray],
                 model: AnswerModel, fallback: AnswerModel | None = None,
                 handoff: HandoffModel | None = None,
                 calibration: Calibration | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.retriever = retriever
        self.embed = embed
        self.model = model
        self.fallback = fallback
        self.handoff = handoff
        self.calibration = calibration
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
        found = self.retrieve(turn)
        intent = None
        if self.handoff is not None:
            p = self.handoff.probability(found.message_vector, turn.message)
            intent = p if p >= self.handoff.threshold else None
        assessment = assess(turn.message, turn.history, found.confidence,
                            turn.clarified_before, variant, intent,
                            intent_decides=self.handoff is not None)
        decision = assessment.decision
        record = Reply(text="", decision=decision.decision, reason=decision.reason,
                       priority=decision.priority, variant=variant.name,
                       confidence=found.confidence, retrieval=found.scores(),
                       sentiment=assessment.trend.last,
                       query=found.query, detail=decision.detail)
        if decision.decision != Decision.ANSWER:
            text = (decision.next_steps if decision.escalate
                    else clarifying_question(found.articles, variant.style))
            yield text
            record.text, record.provider, record.model = text, "rules", "escalation-rules"
            record.latency_ms = (self.clock() - started) * 1000
            yield record
            return
        request = AnswerRequest(
            question=turn.message, passages=passages_for(turn.message, found, self.retriever),
            system_prompt=variant.system_prompt, history=turn.history, style=variant.style,
            variant=variant.name, max_tokens=variant.max_tokens)
        answer: ModelAnswer | None = None
        for event in generate(self.model, self.fallback, request):
            if isinstance(event, ModelAnswer):
                answer = event
            else:
                yield event
        assert answer is not None
        if answer.needs_human:
            late = assessment.with_model_hand_off(answer.human_reason)
            if late.escalate:
                yield "\n\n" + late.next_steps
                answer.text = f"{answer.text}\n\n{late.next_steps}"
                record.decision, record.reason = late.decision, late.reason
                record.priority, record.detail = late.priority, late.detail
        record.text, record.citations = answer.text, cite(answer.cited_ids, request.passages)
        record.provider, record.model, record.usage = answer.provider, answer.model, answer.usage
        record.fallback_from, record.passages = answer.fallback_from, request.passages
        record.latency_ms = (self.clock() - started) * 1000
        yield record

    def retrieve(self, turn: TurnInput) -> Retrieved:
        """Step 1 for ``turn`` with its variant's retrieval settings."""
        settings = turn.variant.retrieval
        return retrieve(self.retriever, self.embed, turn.message, turn.history, settings.k,
                        tuple(settings.collections), self.calibration)
