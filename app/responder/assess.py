"""Step 2 of a turn: assess. Sentiment trend, failed turns and retrieval confidence go to the
escalation rules, which decide: answer, clarify or hand off."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from app.domain import Role, Turn
from app.responder import escalation, sentiment
from app.responder.variants import Variant

_FAILED = re.compile(
    r"\b(didn'?t|doesn'?t|does not|did not|not) (work|help|fix|solve)|still (not|doesn'?t|"
    r"hasn'?t|isn'?t|can'?t|won'?t|no)|not helpful|useless|that'?s not (it|what)|wrong answer|"
    r"already (tried|did)|same (problem|issue)|again\b", re.I)
# VADER is superlinear in length: score at most the last 10 customer turns, 2,000 characters
# each, so a history field is never a way to burn CPU.
_TREND_TURNS, _TREND_CHARS = 10, 2000


@dataclass(frozen=True)
class Assessment:
    """The rules' inputs and their decision for one turn."""

    inputs: escalation.EscalationInputs
    decision: escalation.EscalationDecision
    trend: sentiment.TrendInfo

    def with_model_hand_off(self, reason: str | None) -> escalation.EscalationDecision:
        """The decision again, now that the answer model asked for a person."""
        return escalation.decide(replace(self.inputs, needs_human=True,
                                         needs_human_reason=reason))


def failed_turns(history: list[Turn], message: str) -> int:
    """Consecutive customer messages, ending with ``message``, that say the last answer did
    not solve it (each one following an assistant reply)."""
    count = 0
    texts = [(t.role, t.text) for t in history] + [(Role.CUSTOMER, message)]
    for i in range(len(texts) - 1, 0, -1):
        role, text = texts[i]
        if role != Role.CUSTOMER:
            continue
        if texts[i - 1][0] != Role.ASSISTANT or not _FAILED.search(text):
            break
        count += 1
    return count


def assess(message: str, history: list[Turn], retrieval_confidence: float,
           clarified_before: bool, variant: Variant,
           asks_for_person: float | None = None, intent_decides: bool = False) -> Assessment:
    """Decide what to do with the turn (pure apart from the sentiment model);
    ``asks_for_person`` is the hand-off intent classifier's probability when it fired,
    ``intent_decides`` whether a classifier judged the message at all."""
    prior = [t.text for t in history if t.role == Role.CUSTOMER]
    recent = [t[:_TREND_CHARS] for t in [*prior, message][-_TREND_TURNS:]]
    trend = sentiment.trend([sentiment.score(t) for t in recent])
    inputs = escalation.EscalationInputs(
        message=message, retrieval_confidence=retrieval_confidence, prior_messages=prior,
        sentiment=trend, failed_turns=failed_turns(history, message),
        clarified_before=clarified_before, thresholds=variant.escalation,
        asks_for_person=asks_for_person, intent_decides=intent_decides)
    return Assessment(inputs, escalation.decide(inputs), trend)
