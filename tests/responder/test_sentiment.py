"""Sentiment: VADER per turn, support-chat cue adjustments, and the frustration trend."""

from __future__ import annotations

import math

import pytest

from app.responder import sentiment
from app.responder.sentiment import (
    MAX_PENALTY,
    analyze,
    detect_cues,
    score,
    trend,
    trend_of_texts,
    trend_of_turns,
)
from app.responder.types import Turn

# --- one turn ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "I love this lamp, thank you so much! It works perfectly.",
    "Great, that fixed it. Thanks for the quick help!",
])
def test_clearly_positive(text: str) -> None:
    assert score(text) > 0.5


@pytest.mark.parametrize("text", [
    "This is terrible. The kettle broke after one day and I'm furious.",
    "Worst service ever, I hate this company.",
])
def test_clearly_negative(text: str) -> None:
    assert score(text) < -0.5


@pytest.mark.parametrize("text", [
    "The package arrived today.",
    "What are your shipping options?",
    "I ordered a lamp on Tuesday.",
])
def test_neutral(text: str) -> None:
    assert score(text) == 0.0


def test_scores_stay_in_range() -> None:
    worst = "WHY IS THIS STILL BROKEN??? This is RIDICULOUS, third time asking!!! I hate you"
    result = analyze(worst)
    assert result.score == -1.0
    assert set(result.cues) == {"shouting", "punctuation", "repetition", "repeat_contact",
                                "strong_words"}
    assert -1.0 <= score("so so so happy happy love love great!!!") <= 1.0


def test_all_caps_shouting_lowers_the_score() -> None:
    assert score("where is my order") == 0.0
    shouted = analyze("WHERE IS MY ORDER")
    assert shouted.compound == 0.0  # VADER alone misses it
    assert shouted.cues == ("shouting",)
    assert shouted.score == pytest.approx(-0.20)


def test_acronyms_and_order_numbers_are_not_shouting() -> None:
    assert detect_cues("UPS says delivered and the PDF invoice shows VAT for LM-48213907") == []
    assert "shouting" not in detect_cues("My ORDER is late")  # one capitalised word is emphasis


def test_repeated_punctuation_lowers_the_score() -> None:
    assert score("Where is my order?") == 0.0
    assert score("Where is my order???") == pytest.approx(-0.15)
    assert score("Where is my order?!") == pytest.approx(-0.15)
    assert score("Where is my order!!!") < 0.0


@pytest.mark.parametrize(("text", "cue", "penalty"), [
    ("My refund still hasn't arrived", "repetition", 0.15),
    ("I have to ask again about my refund", "repetition", 0.15),
    ("This is the third time I'm asking about my refund", "repeat_contact", 0.25),
    ("How many times do I have to explain the order", "repeat_contact", 0.25),
])
def test_support_chat_cues(text: str, cue: str, penalty: float) -> None:
    result = analyze(text)
    assert result.compound == 0.0
    assert result.cues == (cue,)
    assert result.score == pytest.approx(-penalty)


def test_strong_words_apply_even_where_vader_reads_praise() -> None:
    result = analyze("This is unbelievable.")
    assert result.compound > 0  # VADER's lexicon calls it positive
    assert result.cues == ("strong_words",)
    assert result.score < 0
    assert score("This is ridiculous") < analyze("This is ridiculous").compound


def test_clearly_positive_messages_keep_their_score() -> None:
    for text in ("THANK YOU SO MUCH!!!", "Thanks again, it works!"):
        result = analyze(text)
        assert result.cues == ()
        assert result.score == result.compound > 0.3


def test_penalty_is_capped() -> None:
    result = analyze("WHY IS IT STILL NOT HERE??? third time asking, ridiculous")
    assert result.compound - result.score <= MAX_PENALTY + 1e-9


def test_one_analyzer_per_process() -> None:
    assert sentiment._get_analyzer() is sentiment._get_analyzer()


# --- the trend (hand-computed, EW alpha 0.5) ---------------------------------------------------

def test_empty_and_single_turn() -> None:
    empty = trend([])
    assert (empty.turns, empty.last, empty.ew_mean, empty.slope, empty.frustrated) == (
        0, 0.0, 0.0, 0.0, False)
    one = trend([-0.9])
    assert (one.turns, one.last, one.ew_mean, one.slope) == (1, -0.9, -0.9, 0.0)
    assert not one.frustrated  # one angry message gets an answer first


def test_ew_mean_and_slope_by_hand() -> None:
    # ew: 0.0 → 0.5*-0.4 + 0.5*0.0 = -0.2 → 0.5*-0.6 + 0.5*-0.2 = -0.4; slope of 0,-0.4,-0.6 = -0.3
    info = trend([0.0, -0.4, -0.6])
    assert info.last == -0.6
    assert info.ew_mean == pytest.approx(-0.4)
    assert info.slope == pytest.approx(-0.3)
    assert info.frustrated and "ew_mean" in info.reasons


def test_slope_uses_the_last_five_turns() -> None:
    info = trend([-1.0, -1.0, 0.0, 0.1, 0.2, 0.3, 0.4])
    assert info.slope == pytest.approx(0.1)


def test_rule_ew_mean_alone() -> None:
    info = trend([-0.4, -0.4])  # ew -0.4; neither turn ≤ -0.5; no drop
    assert info.reasons == ("ew_mean",)
    assert trend([-0.3, -0.4]).frustrated  # ew exactly -0.35: the bound is inclusive
    assert not trend([-0.3, -0.3]).frustrated  # ew -0.3


def test_rule_two_consecutive_negative_turns_alone() -> None:
    # ew: 1, 1, 1, 0.525, 0.0125, -0.24375; drop: max(0.05, -0.5) - -0.5 = 0.55 < 0.6
    info = trend([1.0, 1.0, 1.0, 0.05, -0.5, -0.5])
    assert info.reasons == ("consecutive_negative",)
    assert not trend([1.0, 1.0, 1.0, 0.05, -0.5, -0.49]).frustrated


def test_rule_sharp_drop_alone() -> None:
    # ew: 0.6 → 0.45 → 0.125; max(0.6, 0.3) - (-0.2) = 0.8 ≥ 0.6 and -0.2 ≤ -0.2
    info = trend([0.6, 0.3, -0.2])
    assert info.reasons == ("drop",)
    assert not trend([0.9, 0.2]).frustrated  # fell 0.7 but still content
    assert not trend([0.3, 0.1, -0.25]).frustrated  # fell only 0.55
    assert trend([0.9, -0.3]).reasons == ("drop",)


def test_happy_conversation_is_not_frustrated() -> None:
    info = trend([0.5, 0.6, 0.7])
    assert not info.frustrated and info.reasons == ()
    assert info.slope == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [1.5, -1.01, math.nan])
def test_trend_rejects_scores_outside_the_range(bad: float) -> None:
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        trend([0.1, bad])


def test_trend_of_texts_and_turns() -> None:
    texts = ["hi, where is my order?", "it STILL hasn't arrived???",
             "This is RIDICULOUS, third time asking. Unacceptable!!!"]
    info = trend_of_texts(texts)
    assert info.turns == 3 and info.frustrated
    turns = [Turn("customer", texts[0]), Turn("assistant", "Sorry, worst case it's lost!!!"),
             Turn("customer", texts[1]), Turn("agent", "TERRIBLE NEWS"),
             Turn("customer", texts[2])]
    assert trend_of_turns(turns) == info
