"""Offline evaluation metrics, one module per family, and the input checks they share.

Modules: ``retrieval`` (hit-recall@k, MRR, nDCG@k), ``resolution`` (resolved / correctly
handled), ``escalation`` (precision, recall, F1, false and missed escalations), ``csat`` (the CSAT
proxy and its fit); A/B statistics live in ``eval.stats``.

Every metric reads the runner's rows: one per case x variant, as a dict or a pandas row, with the
columns in ``ROW_COLUMNS``. Each module validates its inputs first (a ``ValueError`` that names
the missing column and the fix), then computes in pure functions. A rate over nothing is NaN,
never 0: "no data" must not read as "0 %".

pandas (the ``eval`` extra) is not imported here: ``supportbot eval retrieval`` and calibration
use these helpers on the core install.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

ROW_COLUMNS: tuple[str, ...] = (
    "case_id", "variant", "kind", "tier", "category", "channel", "needs_human", "human_reason",
    "gold_article_ids", "reference_answer", "n_turns", "answer", "decision", "escalated",
    "clarified", "escalation_reason", "cited_article_ids", "retrieved_ids", "contexts",
    "confidence", "latency_ms", "sentiment_scores", "turns_to_resolution", "judge_correct",
    "similarity",
)

Row = Mapping[str, Any]


def _fix_hint(names: Iterable[str]) -> str:
    listed = ", ".join(repr(n) for n in names)
    return (f"add {listed} to every row (the runner emits one row per case x variant with the "
            f"columns in eval.metrics.ROW_COLUMNS)")


def require_columns(df: pd.DataFrame, columns: Iterable[str], metric: str) -> None:
    """Raise ``ValueError`` naming each of ``columns`` missing from ``df`` and how to add it."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        listed = ", ".join(repr(c) for c in missing)
        raise ValueError(f"{metric} needs column(s) {listed}, missing from the rows; "
                         f"{_fix_hint(missing)}")


def field(row: Row, name: str, metric: str) -> Any:
    """``row[name]``, or a ``ValueError`` naming the field when the row lacks it."""
    if name not in row:
        case = row.get("case_id", "?")
        raise ValueError(f"{metric} needs field {name!r}, missing from row {case!r}; "
                         f"{_fix_hint([name])}")
    return row[name]


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA (the ways a dict or a DataFrame cell says 'no value')."""
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    pandas = sys.modules.get("pandas")  # a value can only be pandas.NA once pandas is loaded
    return pandas is not None and value is pandas.NA


def truthy(value: Any) -> bool:
    """A flag cell as a bool: missing counts as False."""
    return not is_missing(value) and bool(value)


def id_list(value: Any, name: str = "ids") -> list[str]:
    """An id-list cell (list, tuple, array; missing → empty) as a list of strings."""
    if is_missing(value):
        return []
    if isinstance(value, str | bytes):
        raise ValueError(f"{name} must be a list of article ids, got the string {value!r}; "
                         f"wrap it in a list")
    return [str(v) for v in value]


def rate(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or NaN when the denominator is 0."""
    return numerator / denominator if denominator else math.nan


def mean_or_nan(values: Iterable[float]) -> float:
    """The mean of ``values`` ignoring NaN, or NaN when nothing is left."""
    xs = [float(v) for v in values if not is_missing(v)]
    return sum(xs) / len(xs) if xs else math.nan


def variants_of(df: pd.DataFrame) -> list[Any]:
    """The variants in ``df`` in order of first appearance (tables list them in this order)."""
    return list(dict.fromkeys(df["variant"].tolist()))
