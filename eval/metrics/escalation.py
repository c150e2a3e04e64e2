"""How well the assistant's escalations match the cases that need a human.

The prediction is ``escalated`` (any turn escalated), the truth is the gold ``needs_human``:

=====================  ==================  ======================
                       escalated           not escalated
=====================  ==================  ======================
needs a human          TP (correct)        FN (missed)
needs no human         FP (false)          TN
=====================  ==================  ======================

- **precision** = TP / (TP + FP): of the escalations, the share that needed a human (NaN when
  nothing escalated).
- **recall** = TP / (TP + FN): of the cases that need a human, the share escalated (NaN when no
  case needs one).
- **F1** = 2·TP / (2·TP + FP + FN), the harmonic mean of precision and recall written on counts
  so it is 0 (not NaN) when the assistant escalates nothing although some cases need a human;
  NaN only when no case needs a human and nothing escalated.
- **false-escalation rate** = FP / (FP + TN): escalated among the cases that need no human.
- **missed-escalation rate** = FN / (TP + FN) = 1 - recall: not escalated among the cases that
  need a human.
- **escalation rate** = (TP + FP) / n.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from eval.metrics import rate, require_columns, truthy, variants_of

_COLUMNS = ("variant", "needs_human", "escalated")


@dataclass(frozen=True)
class EscalationCounts:
    """The 2x2 counts of ``escalated`` against the gold ``needs_human``.

    Args:
        tp: needs a human and escalated. fp: needs no human but escalated.
        fn: needs a human, not escalated. tn: needs no human, not escalated.

    Example:
        >>> EscalationCounts(tp=3, fp=1, fn=1, tn=5).precision
        0.75
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def n(self) -> int:
        """All cases."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN when nothing escalated."""
        return rate(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); NaN when no case needs a human."""
        return rate(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2·TP / (2·TP + FP + FN); NaN when there is nothing to find and nothing escalated."""
        return rate(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def false_escalation_rate(self) -> float:
        """FP / (FP + TN): escalated among the cases that need no human."""
        return rate(self.fp, self.fp + self.tn)

    @property
    def missed_escalation_rate(self) -> float:
        """FN / (TP + FN): not escalated among the cases that need a human."""
        return rate(self.fn, self.tp + self.fn)

    @property
    def escalation_rate(self) -> float:
        """(TP + FP) / n."""
        return rate(self.tp + self.fp, self.n)


def count(pairs: Iterable[tuple[object, object]]) -> EscalationCounts:
    """Counts from ``(escalated, needs_human)`` pairs (missing values count as False)."""
    tp = fp = fn = tn = 0
    for escalated, needs_human in pairs:
        esc, need = truthy(escalated), truthy(needs_human)
        tp += esc and need
        fp += esc and not need
        fn += need and not esc
        tn += not esc and not need
    return EscalationCounts(tp=tp, fp=fp, fn=fn, tn=tn)


def counts_of(df: pd.DataFrame) -> EscalationCounts:
    """``count`` over a DataFrame's ``escalated`` and ``needs_human`` columns."""
    require_columns(df, ("needs_human", "escalated"), "escalation metrics")
    return count(zip(df["escalated"], df["needs_human"], strict=True))


def confusion_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """The 2x2 table: index ``needs human`` / ``needs no human``, columns ``escalated`` /
    ``not escalated`` (counts over all of ``df``; filter it first for one variant)."""
    c = counts_of(df)
    return pd.DataFrame(
        [[c.tp, c.fn], [c.fp, c.tn]],
        index=pd.Index(["needs human", "needs no human"], name="gold"),
        columns=pd.Index(["escalated", "not escalated"], name="assistant"),
    )


def escalation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Escalation figures per variant (definitions in the module doc).

    Returns:
        One row per variant: ``variant``, ``n``, ``needs_human``, ``escalated``, ``tp``,
        ``fp``, ``fn``, ``tn``, ``precision``, ``recall``, ``f1``, ``false_escalation_rate``,
        ``missed_escalation_rate``, ``escalation_rate``.

    Example:
        >>> rows = pd.DataFrame({"variant": ["a", "a"], "needs_human": [True, False],
        ...                      "escalated": [True, True]})
        >>> escalation_table(rows)[["precision", "recall"]].iloc[0].tolist()
        [0.5, 1.0]
    """
    require_columns(df, _COLUMNS, "escalation_table")
    out = []
    for variant in variants_of(df):
        c = counts_of(df[df["variant"] == variant])
        out.append({
            "variant": variant, "n": c.n, "needs_human": c.tp + c.fn, "escalated": c.tp + c.fp,
            "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
            "precision": c.precision, "recall": c.recall, "f1": c.f1,
            "false_escalation_rate": c.false_escalation_rate,
            "missed_escalation_rate": c.missed_escalation_rate,
            "escalation_rate": c.escalation_rate,
        })
    return pd.DataFrame(out, columns=[
        "variant", "n", "needs_human", "escalated", "tp", "fp", "fn", "tn", "precision",
        "recall", "f1", "false_escalation_rate", "missed_escalation_rate", "escalation_rate"])
