"""Customer sentiment per turn (VADER plus support-chat cues) and the frustration trend.

VADER reads social-media text well but misses how frustration shows in support chat: a whole
message in capitals ("WHERE IS MY ORDER") scores 0.0, "still", "again" and "third time" carry
no valence, and "unbelievable" or "a joke" even score positive. ``analyze`` therefore adjusts
VADER's compound score with a few cues (see ``CUES``):

=====================  =======  =====================================================
cue                    penalty  fires on
=====================  =======  =====================================================
``shouting``           0.20     two or more ALL-CAPS words of 3+ letters (acronyms like
                                UPS, PDF, VAT, LM-… order numbers are ignored)
``punctuation``        0.15     "!!", "??", "?!" or longer runs
``repetition``         0.15     "still", "again", "yet again", "once more"
``repeat_contact``     0.25     "third time", "how many times", "keep asking",
                                "going in circles", "over and over"
``strong_words``       0.25     ridiculous, unacceptable, worst, useless, pathetic, a joke,
                                unbelievable, fed up, sick of, waste of time, …
=====================  =======  =====================================================

Each cue counts once per message; the penalties are summed, capped at ``MAX_PENALTY`` (0.6) and
subtracted from the compound score, clamped to [-1, 1]. The cues are ignored when VADER finds
the message clearly positive (compound ≥ ``POSITIVE_GATE``), so "Thanks again!!" or
"THANK YOU SO MUCH" stay positive; only ``strong_words`` still apply there, because VADER rates
"unbelievable" and "joke" as praise.

``trend`` turns a conversation's customer scores into a ``TrendInfo``; the frustration rule is
documented on it.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from app.responder.types import Turn

MAX_PENALTY = 0.6
POSITIVE_GATE = 0.3
EW_ALPHA = 0.5  # weight of the newest turn in the exponentially weighted mean
SLOPE_WINDOW = 5  # turns the slope is fitted over

# Frustration thresholds (see ``trend``).
FRUSTRATED_EW_MEAN = -0.35
FRUSTRATED_TURN = -0.5
FRUSTRATED_DROP = 0.6
FRUSTRATED_DROP_FLOOR = -0.2

_ACRONYMS = frozenset(re.findall(r"\w+", (
    "UPS USPS DHL FEDEX PDF VAT ETA FAQ SMS USA USD CAD GBP EUR CCPA GDPR FTC BBB APP WIFI "
    "GHZ LED USB ZIP PIN ATM URL LOL OMG ASAP LM ID PM AM ET PST EST")))
_CAPS_WORD = re.compile(r"\b[A-Z][A-Z']{2,}\b")
_PUNCTUATION = re.compile(r"!!|\?\?|\?!|!\?")
_REPETITION = re.compile(r"\b(still|again|yet again|once more|anymore)\b", re.I)
_REPEAT_CONTACT = re.compile(
    r"\b((second|third|fourth|fifth|2nd|3rd|4th|5th|\d+(st|nd|rd|th)|umpteenth|nth) time|"
    r"how many (more )?times|keep (asking|telling|getting|saying)|going (round|around) in circles|"
    r"going in circles|over and over|(multiple|several|many) times)\b",
    re.I,
)
_STRONG_WORDS = re.compile(
    r"\b(ridiculous|unacceptable|worst|useless|pathetic|(a|total|complete) joke|unbelievable|"
    r"fed up|sick of|sick and tired|waste of (my )?time|absurd|incompetent|disgrace(ful)?|"
    r"outrageous|appalling|horrible|garbage|rubbish|trash|shambles|nightmare|furious|"
    r"livid|fix it now|hopeless|fed-up)\b",
    re.I,
)

CUES: dict[str, float] = {
    "shouting": 0.20,
    "punctuation": 0.15,
    "repetition": 0.15,
    "repeat_contact": 0.25,
    "strong_words": 0.25,
}

_analyzer: SentimentIntensityAnalyzer | None = None
_analyzer_lock = threading.Lock()


def _get_analyzer() -> SentimentIntensityAnalyzer:
    """The process's single VADER analyzer (it loads its lexicon once)."""
    global _analyzer
    if _analyzer is None:
        with _analyzer_lock:
            if _analyzer is None:
                _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


@dataclass(frozen=True)
class TurnSentiment:
    """One message's sentiment.

    Args:
        compound: VADER's compound score in [-1, 1].
        score: the adjusted score (compound minus the support-chat cue penalties) in [-1, 1].
        cues: names of the cues that fired, in ``CUES`` order.
    """

    compound: float
    score: float
    cues: tuple[str, ...] = ()


def detect_cues(text: str) -> list[str]:
    """The support-chat frustration cues present in ``text`` (names from ``CUES``)."""
    found: list[str] = []
    caps = [w for w in _CAPS_WORD.findall(text) if w.replace("'", "") not in _ACRONYMS]
    if len(caps) >= 2:
        found.append("shouting")
    if _PUNCTUATION.search(text):
        found.append("punctuation")
    if _REPETITION.search(text):
        found.append("repetition")
    if _REPEAT_CONTACT.search(text):
        found.append("repeat_contact")
    if _STRONG_WORDS.search(text):
        found.append("strong_words")
    return found


def analyze(text: str) -> TurnSentiment:
    """VADER's compound score and the cue-adjusted score for one customer message."""
    compound = float(_get_analyzer().polarity_scores(text)["compound"])
    cues = detect_cues(text)
    if compound >= POSITIVE_GATE:
        cues = [c for c in cues if c == "strong_words"]
    penalty = min(MAX_PENALTY, sum(CUES[c] for c in cues))
    adjusted = max(-1.0, min(1.0, compound - penalty))
    return TurnSentiment(compound=compound, score=round(adjusted, 4), cues=tuple(cues))


def score(text: str) -> float:
    """Adjusted sentiment of one message in [-1, 1] (negative = unhappy); see the module doc."""
    return analyze(text).score


@dataclass(frozen=True)
class TrendInfo:
    """How the customer's mood is moving over their turns.

    Args:
        turns: number of scored customer turns.
        last: the latest turn's score (0.0 when there are none).
        ew_mean: exponentially weighted mean, newest turn weighted ``EW_ALPHA``.
        slope: least-squares change in score per turn over the last ``SLOPE_WINDOW`` turns.
        frustrated: whether the frustration rule (see ``trend``) fired.
        reasons: which parts of the rule fired: ``ew_mean``, ``consecutive_negative``, ``drop``.

    Example:
        >>> trend([0.2, -0.6, -0.7]).frustrated
        True
    """

    turns: int
    last: float
    ew_mean: float
    slope: float
    frustrated: bool
    reasons: tuple[str, ...] = ()


def trend(scores: Sequence[float]) -> TrendInfo:
    """Summarise per-turn scores (oldest first) and decide whether the customer is frustrated.

    The customer is frustrated when any of these holds:

    - ``ew_mean``: at least two turns and the EW mean is ≤ -0.35 (one angry message alone gets
      an answer first; persistent negativity does not);
    - ``consecutive_negative``: the last two turns are both ≤ -0.5;
    - ``drop``: the latest score is ≤ -0.2 and at least 0.6 below the best of the two turns
      before it (mood fell sharply within the last three turns).

    Raises:
        ValueError: a score is not a number in [-1, 1].
    """
    values = [float(s) for s in scores]
    for i, s in enumerate(values):
        if math.isnan(s) or not -1.0 <= s <= 1.0:
            raise ValueError(f"score {i} is {s}; pass sentiment scores in [-1, 1] (use score())")
    if not values:
        return TrendInfo(turns=0, last=0.0, ew_mean=0.0, slope=0.0, frustrated=False)
    ew = values[0]
    for s in values[1:]:
        ew = EW_ALPHA * s + (1 - EW_ALPHA) * ew
    last = values[-1]
    reasons: list[str] = []
    if len(values) >= 2 and ew <= FRUSTRATED_EW_MEAN:
        reasons.append("ew_mean")
    if len(values) >= 2 and values[-1] <= FRUSTRATED_TURN and values[-2] <= FRUSTRATED_TURN:
        reasons.append("consecutive_negative")
    before = values[-3:-1]
    if before and last <= FRUSTRATED_DROP_FLOOR and max(before) - last >= FRUSTRATED_DROP - 1e-9:
        reasons.append("drop")
    return TrendInfo(
        turns=len(values),
        last=last,
        ew_mean=round(ew, 4),
        slope=round(_slope(values[-SLOPE_WINDOW:]), 4),
        frustrated=bool(reasons),
        reasons=tuple(reasons),
    )


def trend_of_texts(texts: Sequence[str]) -> TrendInfo:
    """``trend`` over the scores of several customer messages (oldest first)."""
    return trend([score(t) for t in texts])


def trend_of_turns(turns: Sequence[Turn]) -> TrendInfo:
    """``trend`` over the customer's turns of a conversation (assistant/agent turns skipped)."""
    return trend_of_texts([t.text for t in turns if t.role == "customer"])


def _slope(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    den = sum((x - mean_x) ** 2 for x in range(n))
    return num / den
