"""The answer confidence's domain-free features and the leave-one-domain-out calibration's pure
parts (the end-to-end command is tested in tests/cli/test_evaluation.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from app.responder.confidence import FEATURES, confidence, features, question_type
from eval.calibrate import (
    choose_threshold,
    decisions,
    fit_logistic,
    fitted_without,
    reliability,
)


@dataclass
class Hit:
    dense_score: float | None
    lexical_score: float | None
    dense_rank: int | None
    lexical_rank: int | None


@pytest.mark.parametrize(("text", "expected"), [
    ("has my complaint C-48213 been resolved yet", [1.0, 0.0]),
    ("did my Direct Debit go out yesterday", [1.0, 0.0]),
    ("why is my bill higher this month", [1.0, 0.0]),
    ("should I fix my mortgage for 2 years or 5 years?", [0.0, 1.0]),
    ("how does fibre optic cable actually work", [0.0, 1.0]),
    ("how do I set up a direct debit", [0.0, 0.0]),
    ("what is the overdraft fee", [0.0, 0.0]),
])
def test_question_types_no_help_center_answers(text: str, expected: list[float]) -> None:
    assert question_type(text) == expected


def test_a_lookup_of_the_customers_own_records_lowers_confidence() -> None:
    hits = [Hit(0.62, 9.0, 1, 1), Hit(0.45, 4.0, 2, 2)]
    assert len(features(hits, "x")) == len(FEATURES)
    general = confidence(hits, "how do I dispute a card payment")
    own = confidence(hits, "has my dispute 4829113 been resolved yet")
    assert 0.0 < own < general < 1.0
    assert confidence([], "anything") == 0.0


def _part(p_answerable: list[float], p_oos: list[float], top2: list[bool]) -> tuple[
        np.ndarray, dict[str, np.ndarray]]:
    p = np.array(p_answerable + p_oos)
    ok = np.array([True] * len(p_answerable) + [False] * len(p_oos))
    return p, {"answerable": ok, "top2": np.array(top2 + [False] * len(p_oos))}


def test_decisions_count_answered_right_and_refused() -> None:
    p, part = _part([0.9, 0.6, 0.2, 0.8], [0.7, 0.1], [True, False, True, True])
    got = decisions(p, part, 0.5)
    assert got == {"answered": 0.75, "right_top2": 0.5, "oos_not_answered": 0.5}


def test_the_threshold_is_the_strictest_that_still_answers_the_target_share() -> None:
    curve = [{"threshold": t, "per_domain": {
        "a": {"answered": a}, "b": {"answered": b}, "c": {"answered": 0.0}}}
        for t, a, b in ((0.3, 0.99, 0.97), (0.4, 0.95, 0.9), (0.5, 0.9, 0.85))]
    assert choose_threshold(curve, ["a", "b"]) == 0.4  # mean 0.925; at 0.5 it is 0.875
    assert choose_threshold(curve, ["c"]) == 0.3  # none reaches it: the most permissive


def test_the_held_out_fit_never_sees_the_domain_it_predicts() -> None:
    rng = np.random.default_rng(0)
    data = {}
    for name, shift in (("a", 0.0), ("b", 0.5), ("c", 5.0)):
        x = rng.normal(shift, 1.0, (60, 2))
        data[name] = {"x": x, "y": (x[:, 0] > shift).astype(float)}
    without_c = fitted_without(data, "c")
    w = fit_logistic(np.vstack([data["a"]["x"], data["b"]["x"]]),
                     np.concatenate([data["a"]["y"], data["b"]["y"]]))
    assert without_c.bias == pytest.approx(w[0])
    assert without_c.weights == pytest.approx(tuple(w[1:]))
    assert fitted_without(data, None).bias != pytest.approx(w[0])


def test_reliability_bins_hold_every_prediction_once() -> None:
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    y = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    rows = reliability(p, y)
    assert [r["n"] for r in rows] == [1, 2, 2]
    assert rows[1]["observed"] == 0.5 and rows[2]["predicted"] == pytest.approx(0.975)
