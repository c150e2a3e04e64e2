"""Escalation rules: each rule, their priority order, phrasings and near-misses, next steps."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.responder.escalation import (
    AGENT_HOURS_TEXT,
    CLARIFY_MESSAGE,
    PRIORITY,
    REASONS,
    EscalationInputs,
    agents_online_at,
    decide,
    find_human_request,
    find_sensitive_topic,
    is_vague,
    next_steps_for,
    repeat_count,
)
from app.responder.sentiment import TrendInfo
from app.responder.variants import EscalationSettings

CALM = TrendInfo(turns=1, last=0.0, ew_mean=0.0, slope=0.0, frustrated=False)
FRUSTRATED = TrendInfo(turns=3, last=-0.7, ew_mean=-0.6, slope=-0.3, frustrated=True,
                       reasons=("ew_mean",))
SPECIFIC = "How long does a refund take to reach my card after the return arrives?"


def inputs(message: str = SPECIFIC, confidence: float = 0.9, **kw: Any) -> EscalationInputs:
    kw.setdefault("sentiment", CALM)
    return EscalationInputs(message=message, retrieval_confidence=confidence, **kw)


# --- explicit requests for a person -----------------------------------------------------------

HUMAN_REQUESTS = [
    "let me talk to a person",
    "I want a real person",
    "human please",
    "agent",
    "AGENT!!!",
    "representative",
    "operator",
    "Can I speak to someone?",
    "Please call me at 555-0100",
    "can somebody from your team call me back? my order had the wrong item",
    "give me a call",
    "I want to speak to your supervisor",
    "Get me a manager now",
    "is this a bot?",
    "Am I talking to a robot right now",
    "are you a real person?",
    "talk to a live agent",
    "humna",
    "reprsentative please",
    "i wnat to talk to a humen",
    "transfer me to an agent",
    "Connect me with a human",
    "just put me through to someone who can help",
    "I'd like to speak to a representative",
    "I need a human being",
    "speak with an actual human",
    "hi can i chat with a real customer service rep, i have a question about merging two accounts",
    "escalate this to a supervisor",
    "Is there a human I can talk to?",
    "customer service please",
    "stop the bot, human please. it's about a charge on my card",
    "I don't know, can I talk to someone?",
    "No actually I just want to talk to somebody",
    "Quiero hablar con una persona",
    "¿Puedo hablar con un agente?",
    "hablar con un representante, por favor",
    "representante por favor",
    "necesito un agente humano",
    "¿Eres un robot?",
]

NEAR_MISSES = [
    "My agent said the refund was approved",
    "The delivery person left it at the wrong door",
    "What user agent string does the app send?",
    "I'm a real person, not a bot, so why is my account locked?",
    "No need for a human, the article solved it",
    "I don't want to talk to a person, just tell me the return window",
    "My travel agent booked the hotel, can I ship my order there?",
    "Will UPS call me before delivering?",
    "Please don't call me, email is fine",
    "Is this a machine washable duvet?",
    "Can I transfer my gift card to someone else?",
    "The manager of my building signed for the package",
    "Does the delivery need a person to sign for it?",
    "I can't manage to log in to my account",
    "I talked to an agent yesterday and she said it shipped",
    "Is there a person I can add to my Plus membership?",
    "Mi agente de viajes dijo que el paquete llegó",
]


@pytest.mark.parametrize("message", HUMAN_REQUESTS)
def test_human_request_phrasings_match(message: str) -> None:
    assert find_human_request(message), message
    decision = decide(inputs(message))
    assert (decision.escalate, decision.reason, decision.priority) == (
        True, "explicit_request", "normal")
    assert decision.detail


@pytest.mark.parametrize("message", NEAR_MISSES)
def test_near_misses_do_not_match(message: str) -> None:
    assert find_human_request(message) is None, message
    assert decide(inputs(message)).decision == "answer"


def test_phrasing_lists_are_big_enough() -> None:
    assert len(HUMAN_REQUESTS) >= 25 and len(NEAR_MISSES) >= 10


# --- sensitive topics -------------------------------------------------------------------------

SENSITIVE = [
    ("self_harm", "urgent", "some days i just want to end it all"),
    ("self_harm", "urgent", "I feel like I'm going to hurt myself"),
    ("self_harm", "urgent", "honestly i don't see the point of anything anymore"),
    ("self_harm", "urgent", "i've been feeling suicidal"),
    ("self_harm", "urgent", "i don't want to be here anymore"),
    ("account_takeover", "urgent", "I think my account was hacked"),
    ("account_takeover", "urgent", "Someone changed my email and password"),
    ("account_takeover", "urgent", "I got a sign-in alert from another country"),
    ("account_takeover", "urgent", "someone got into my account and ordered stuff"),
    ("account_takeover", "urgent", "I never requested a password reset, what is this"),
    ("sensitive_fraud", "high", "There are unauthorized charges on my card"),
    ("sensitive_fraud", "high", "I see charges I didn't make on my statement"),
    ("sensitive_fraud", "high", "My card was stolen and someone used it on your site"),
    ("sensitive_fraud", "high", "there are 2 orders on my account I never placed"),
    ("sensitive_fraud", "high", "This is fraud"),
    ("sensitive_legal", "high", "I'm talking to my lawyer about this"),
    ("sensitive_legal", "high", "My attorney will be in touch"),
    ("sensitive_legal", "high", "I'm going to sue you"),
    ("sensitive_legal", "high", "See you in small claims court"),
    ("sensitive_legal", "high", "I'll file a chargeback with my bank"),
    ("sensitive_legal", "high", "I'm reporting you to the BBB"),
    ("sensitive_legal", "high", "I will take legal action"),
    ("sensitive_legal", "high", "Stop or I'm filing a complaint with the FTC"),
]


@pytest.mark.parametrize(("reason", "priority", "message"), SENSITIVE)
def test_sensitive_topics(reason: str, priority: str, message: str) -> None:
    found = find_sensitive_topic(message)
    assert found is not None and found[0] == reason, (message, found)
    decision = decide(inputs(message))
    assert (decision.escalate, decision.reason, decision.priority) == (True, reason, priority)


@pytest.mark.parametrize("message", [
    "I was charged twice for one order",
    "Sue from your team helped me last week",
    "Can I get the shipping charge back if it arrived late?",
    "The battery died after a day",
    "Is there a hack to make the lamp brighter?",
    "How do I change my password?",
])
def test_ordinary_questions_are_not_sensitive(message: str) -> None:
    assert find_sensitive_topic(message) is None


def test_sensitive_topics_are_matched_even_when_negated() -> None:
    assert decide(inputs("I don't want to sue, I just want my refund")).reason == (
        "sensitive_legal")


# --- the other rules --------------------------------------------------------------------------

def test_model_requested() -> None:
    decision = decide(inputs(needs_human=True, needs_human_reason="policy_exception"))
    assert (decision.reason, decision.priority, decision.detail) == (
        "model_requested", "normal", "policy_exception")


def test_negative_sentiment_from_the_trend() -> None:
    decision = decide(inputs(sentiment=FRUSTRATED))
    assert (decision.escalate, decision.reason, decision.priority) == (
        True, "negative_sentiment", "high")
    assert decision.next_steps.startswith("I'm sorry this has been so frustrating")


def test_negative_sentiment_computed_from_messages_when_not_given() -> None:
    prior = ["where is my order?", "it STILL hasn't arrived???"]
    angry = "This is RIDICULOUS, third time asking. Unacceptable!!!"
    decision = decide(EscalationInputs(angry, 0.9, prior_messages=prior))
    assert decision.reason == "negative_sentiment"
    assert decide(EscalationInputs(angry, 0.9)).decision == "answer"  # one angry turn: answer


@pytest.mark.parametrize(("failed", "limit", "escalate"), [
    (2, 2, True), (3, 2, True), (1, 2, False), (2, 3, False), (3, 3, True),
])
def test_repeated_failure(failed: int, limit: int, escalate: bool) -> None:
    settings = EscalationSettings(max_failed_turns=limit)
    decision = decide(inputs(failed_turns=failed, thresholds=settings))
    assert decision.escalate is escalate
    if escalate:
        assert (decision.reason, decision.priority) == ("repeated_failure", "normal")


def test_asking_the_same_question_again_counts_as_failed_turns() -> None:
    question = "how long does a refund take to reach my card?"
    assert repeat_count("How long does a refund take to reach my card??", [question]) == 1
    assert repeat_count("Can I return a gift card?", [question]) == 0
    assert repeat_count("refund?", ["refund?"]) == 0  # too short to call it a repeat
    assert decide(inputs(question, prior_messages=[question])).decision == "answer"
    assert decide(inputs(question, prior_messages=[question, "hello", question])).reason == (
        "repeated_failure")
    # a floor, not an addition: the caller's count of this same turn isn't doubled
    assert decide(inputs(question, prior_messages=[question], failed_turns=1)).decision == (
        "answer")


def test_low_confidence_asks_to_clarify_once_then_escalates() -> None:
    first = decide(inputs(confidence=0.2))
    assert (first.escalate, first.clarify, first.reason) == (False, True, "low_confidence")
    assert first.decision == "clarify" and first.next_steps == CLARIFY_MESSAGE
    second = decide(inputs(confidence=0.2, clarified_before=True))
    assert (second.decision, second.reason, second.priority) == (
        "escalate", "low_confidence", "low")


def test_between_thresholds_only_vague_questions_get_a_clarifying_question() -> None:
    assert decide(inputs("it's broken", confidence=0.4)).decision == "clarify"
    assert decide(inputs("where is it", confidence=0.4)).decision == "clarify"
    assert decide(inputs(SPECIFIC, confidence=0.4)).decision == "answer"
    assert decide(inputs("it's broken", confidence=0.4, clarified_before=True)).decision == (
        "answer")
    assert decide(inputs("it's broken", confidence=0.5)).decision == "answer"  # bound exclusive
    assert decide(inputs(SPECIFIC, confidence=0.35)).decision == "answer"


def test_thresholds_come_from_the_variant() -> None:
    strict = EscalationSettings(confidence_threshold=0.6, clarify_threshold=0.8)
    assert decide(inputs(confidence=0.5, thresholds=strict)).decision == "clarify"
    assert decide(inputs(confidence=0.5)).decision == "answer"


def test_missing_confidence_counts_as_none() -> None:
    assert decide(inputs(confidence=math.nan)).decision == "clarify"


def test_vagueness() -> None:
    assert is_vague("help")
    assert is_vague("it doesn't work")
    assert is_vague("refund?")
    assert not is_vague("The smart lamp blinks amber after the firmware update")
    assert not is_vague("and for Plus?", ["How much is expedited shipping to Canada?"])


def test_answer_path() -> None:
    decision = decide(inputs())
    assert (decision.escalate, decision.clarify, decision.reason, decision.next_steps) == (
        False, False, None, "")
    assert decision.decision == "answer"


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        inputs(confidence=1.5)
    with pytest.raises(ValueError, match="failed_turns"):
        inputs(failed_turns=-1)


# --- priority order ---------------------------------------------------------------------------

def test_documented_priority_order() -> None:
    assert REASONS == ("self_harm", "account_takeover", "sensitive_fraud", "sensitive_legal",
                       "explicit_request", "model_requested", "negative_sentiment",
                       "repeated_failure", "low_confidence")
    assert set(PRIORITY) == set(REASONS)


@pytest.mark.parametrize(("winner", "kwargs"), [
    ("self_harm", {"message": "My account was hacked and honestly I want to end it all"}),
    ("account_takeover", {"message": "I was hacked and there are unauthorized charges"}),
    ("sensitive_fraud", {"message": "Unauthorized charges on my card, my lawyer will hear"}),
    ("sensitive_legal", {"message": "Let me talk to a person or I call my lawyer"}),
    ("explicit_request", {"message": "agent please", "needs_human": True,
                          "sentiment": FRUSTRATED, "failed_turns": 5, "confidence": 0.1}),
    ("model_requested", {"needs_human": True, "sentiment": FRUSTRATED, "failed_turns": 5,
                         "confidence": 0.1, "clarified_before": True}),
    ("negative_sentiment", {"sentiment": FRUSTRATED, "failed_turns": 5, "confidence": 0.1,
                            "clarified_before": True}),
    ("repeated_failure", {"failed_turns": 5, "confidence": 0.1, "clarified_before": True}),
    ("low_confidence", {"confidence": 0.1, "clarified_before": True}),
])
def test_first_matching_rule_wins(winner: str, kwargs: dict[str, Any]) -> None:
    assert decide(inputs(**kwargs)).reason == winner


# --- next steps -------------------------------------------------------------------------------

def test_self_harm_gives_crisis_resources_first() -> None:
    text = decide(inputs("i want to kill myself")).next_steps
    assert "988" in text[:200]
    assert "116 123" in text and "911" in text
    assert "passed this" not in text and "offline" not in text


def test_takeover_next_steps_secure_the_account() -> None:
    text = decide(inputs("my account was hacked")).next_steps
    assert "Sign out of all devices" in text and "security team" in text and "1\N{EN DASH}2" in text


def test_fraud_next_steps_never_ask_for_the_card_number() -> None:
    assert "full card number" in next_steps_for("sensitive_fraud")


@pytest.mark.parametrize(("online", "phrase"), [
    (None, f"Agents are online {AGENT_HOURS_TEXT} every day"),
    (True, "An agent will pick up this conversation here shortly."),
    (False, "Our agents are offline right now"),
])
def test_next_steps_say_when_a_person_replies(online: bool | None, phrase: str) -> None:
    decision = decide(inputs("human please", agents_online=online))
    assert decision.next_steps.startswith("Of course. I'm passing this conversation to a person.")
    assert phrase in decision.next_steps


@pytest.mark.parametrize(("utc", "online"), [
    (datetime(2026, 11, 20, 12, 59, tzinfo=UTC), False),  # 7:59 am EST
    (datetime(2026, 11, 20, 13, 0, tzinfo=UTC), True),  # 8:00 am EST
    (datetime(2026, 11, 21, 2, 59, tzinfo=UTC), True),  # 9:59 pm EST
    (datetime(2026, 11, 21, 3, 0, tzinfo=UTC), False),  # 10:00 pm EST
    (datetime(2026, 7, 1, 12, 0, tzinfo=UTC), True),  # 8:00 am EDT
    (datetime(2026, 7, 1, 8, 0, tzinfo=timezone(timedelta(hours=-4))), True),
])
def test_agent_hours_are_eastern_time(utc: datetime, online: bool) -> None:
    assert agents_online_at(utc) is online


def test_agent_hours_need_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        agents_online_at(datetime(2026, 11, 20, 12, 0))


@pytest.mark.parametrize("text", [
    "can someone please tell me where my order is",
    "Could somebody please explain the return policy?",
    "Please call me by my first name",
])
def test_polite_questions_are_not_requests_for_a_person(text: str) -> None:
    assert find_human_request(text) is None


@pytest.mark.parametrize("text", ["someone please!!", "call me back", "agent please"])
def test_real_requests_still_are(text: str) -> None:
    assert find_human_request(text) is not None
