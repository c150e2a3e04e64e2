"""Escalation precision, recall, F1 and error rates on hand-counted confusion matrices."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from eval.metrics.escalation import confusion_matrix, count, counts_of, escalation_table


def _frame(pairs: list[tuple[bool, bool]], variant: str = "a") -> pd.DataFrame:
    return pd.DataFrame({"variant": variant, "escalated": [e for e, _ in pairs],
                         "needs_human": [n for _, n in pairs]})


# (escalated, needs_human): TP TP FP FN TN TN TN
MIXED = [(True, True), (True, True), (True, False), (False, True),
         (False, False), (False, False), (False, False)]


def test_mixed_by_hand() -> None:
    c = count(MIXED)
    assert (c.tp, c.fp, c.fn, c.tn, c.n) == (2, 1, 1, 3, 7)
    assert c.precision == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert c.recall == pytest.approx(2 / 3)  # 2 / (2 + 1)
    assert c.f1 == pytest.approx(2 / 3)  # 2·2 / (2·2 + 1 + 1) = 4/6
    assert c.false_escalation_rate == 0.25  # 1 / (1 + 3)
    assert c.missed_escalation_rate == pytest.approx(1 / 3)  # 1 / (2 + 1)
    assert c.escalation_rate == pytest.approx(3 / 7)


def test_all_escalated() -> None:
    c = count([(True, True), (True, False), (True, False)])  # TP FP FP
    assert c.precision == pytest.approx(1 / 3)
    assert c.recall == 1.0
    assert c.f1 == 0.5  # 2 / (2 + 2 + 0)
    assert c.false_escalation_rate == 1.0  # 2 / 2
    assert c.missed_escalation_rate == 0.0


def test_nothing_to_escalate_and_nothing_escalated_is_nan() -> None:
    c = count([(False, False), (False, False)])
    assert math.isnan(c.precision) and math.isnan(c.recall) and math.isnan(c.f1)
    assert math.isnan(c.missed_escalation_rate)
    assert c.false_escalation_rate == 0.0  # 0 / 2: measured, and zero


def test_escalating_nothing_when_needed_scores_zero_f1() -> None:
    c = count([(False, True), (False, False)])  # FN TN
    assert math.isnan(c.precision)  # no escalations to judge
    assert c.recall == 0.0 and c.f1 == 0.0 and c.missed_escalation_rate == 1.0


def test_empty_rows_are_nan() -> None:
    c = counts_of(_frame([]))
    assert c.n == 0 and math.isnan(c.escalation_rate) and math.isnan(c.false_escalation_rate)


def test_missing_cells_count_as_false() -> None:
    assert count([(None, True), (math.nan, False)]) == count([(False, True), (False, False)])


def test_confusion_matrix_layout() -> None:
    m = confusion_matrix(_frame(MIXED))
    assert m.loc["needs human", "escalated"] == 2  # TP
    assert m.loc["needs human", "not escalated"] == 1  # FN
    assert m.loc["needs no human", "escalated"] == 1  # FP
    assert m.loc["needs no human", "not escalated"] == 3  # TN


def test_escalation_table_per_variant() -> None:
    rows = pd.concat([_frame(MIXED, "a"), _frame([(True, True), (True, False)], "b")])
    table = escalation_table(rows).set_index("variant")
    assert table.loc["a", "precision"] == pytest.approx(2 / 3)
    assert table.loc["a", "needs_human"] == 3 and table.loc["a", "escalated"] == 3
    assert table.loc["b", "precision"] == 0.5 and table.loc["b", "recall"] == 1.0
    assert table.loc["b", "false_escalation_rate"] == 1.0


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="'needs_human'"):
        escalation_table(pd.DataFrame({"variant": ["a"], "escalated": [True]}))
