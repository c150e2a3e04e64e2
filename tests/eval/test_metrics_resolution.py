"""Resolution and correct handling, branch by branch, on hand-made runner rows."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from eval.metrics.resolution import (
    SIMILARITY_THRESHOLD,
    correctly_handled,
    resolution_table,
    resolved,
    with_outcomes,
)


def row(**overrides: Any) -> dict[str, Any]:
    """A runner row for a case the assistant resolved; override fields to break it."""
    base: dict[str, Any] = {
        "case_id": "case-1", "variant": "control", "kind": "single", "needs_human": False,
        "decision": "answer", "escalated": False, "clarified": False,
        "cited_article_ids": ["g"], "gold_article_ids": ["g", "h"], "judge_correct": None,
        "similarity": 0.6, "turns_to_resolution": 1,
    }
    return base | overrides


def test_resolved_when_all_four_conditions_hold() -> None:
    assert resolved(row())


@pytest.mark.parametrize("broken", [
    {"needs_human": True},  # (a)
    {"decision": "clarify"},  # (b)
    {"decision": "escalate", "escalated": True},  # (b)
    {"escalated": True},  # (b): answered at the end but escalated on an earlier turn
    {"cited_article_ids": ["other"]},  # (c): cited, but no gold article
    {"cited_article_ids": []},  # (c)
    {"gold_article_ids": [], "cited_article_ids": ["g"]},  # (c): nothing to be grounded in
    {"similarity": 0.2},  # (d)
    {"judge_correct": False, "similarity": 0.9},  # (d): the judge's verdict wins
])
def test_each_condition_is_needed(broken: dict[str, Any]) -> None:
    assert not resolved(row(**broken))


def test_similarity_threshold_is_inclusive() -> None:
    assert SIMILARITY_THRESHOLD == 0.5
    assert resolved(row(similarity=0.5))
    assert not resolved(row(similarity=0.499))
    assert resolved(row(similarity=0.2), threshold=0.2)


def test_judge_verdict_used_when_a_judge_ran() -> None:
    assert resolved(row(judge_correct=True, similarity=0.0))
    assert resolved(row(judge_correct=math.nan, similarity=0.5))  # NaN = no judge (pandas)


def test_no_verdict_at_all_is_an_input_error() -> None:
    with pytest.raises(ValueError, match="similarity"):
        resolved(row(judge_correct=None, similarity=None))
    assert not resolved(row(judge_correct=None, similarity=None, needs_human=True))  # (a) first


def test_missing_field_is_named() -> None:
    bad = row()
    del bad["cited_article_ids"]
    with pytest.raises(ValueError, match="'cited_article_ids'"):
        resolved(bad)


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, True),  # branch 1: resolved
    ({"needs_human": True, "escalated": True, "decision": "escalate"}, True),  # 2: correct esc.
    ({"needs_human": True, "escalated": False}, False),  # needed a human, got an answer
    ({"kind": "out_of_scope", "gold_article_ids": [], "decision": "clarify",
      "clarified": True}, True),  # branch 3: clarified
    ({"kind": "ambiguous", "gold_article_ids": [], "escalated": True,
      "decision": "escalate"}, True),  # branch 3: escalated
    ({"kind": "out_of_scope", "gold_article_ids": [], "cited_article_ids": []}, True),  # 3: decline
    ({"kind": "out_of_scope", "gold_article_ids": [], "cited_article_ids": ["x"]}, False),
    ({"similarity": 0.1}, False),  # a wrong answer to a single question
    ({"escalated": True, "decision": "escalate"}, False),  # escalated what it could answer
])
def test_correctly_handled_branches(fields: dict[str, Any], expected: bool) -> None:
    assert correctly_handled(row(**fields)) is expected


def test_resolution_table_by_hand() -> None:
    rows = pd.DataFrame([
        row(case_id="c1", turns_to_resolution=1),  # resolved
        row(case_id="c2", turns_to_resolution=3),  # resolved
        row(case_id="c3", needs_human=True, escalated=True, decision="escalate",
            turns_to_resolution=None),  # correct escalation
        row(case_id="c4", similarity=0.1, turns_to_resolution=2),  # wrong answer
        row(case_id="c5", variant="b", kind="out_of_scope", gold_article_ids=[],
            cited_article_ids=[], decision="clarify", clarified=True, turns_to_resolution=None),
    ])
    table = resolution_table(rows).set_index("variant")
    control = table.loc["control"]
    assert control["n"] == 4
    assert control["resolved"] == 2
    assert control["resolution_rate"] == 0.5  # 2 / 4
    assert control["correct_escalations"] == 1
    assert control["correctly_handled_rate"] == 0.75  # (2 resolved + 1 escalation) / 4
    assert control["mean_turns_to_resolution"] == 2.0  # (1 + 3) / 2; c4 is not resolved
    b = table.loc["b"]
    assert (b["n"], b["resolved"], b["resolution_rate"]) == (1, 0, 0.0)
    assert b["correctly_handled_rate"] == 1.0
    assert math.isnan(b["mean_turns_to_resolution"])  # nothing resolved: NaN, not 0


def test_with_outcomes_adds_bool_columns() -> None:
    scored = with_outcomes(pd.DataFrame([row(), row(similarity=0.0)]))
    assert scored["resolved"].tolist() == [True, False]
    assert scored["correctly_handled"].tolist() == [True, False]
    assert scored["correct_escalation"].tolist() == [False, False]


def test_missing_column_is_named() -> None:
    rows = pd.DataFrame([row()]).drop(columns=["judge_correct"])
    with pytest.raises(ValueError, match="'judge_correct'"):
        resolution_table(rows)
