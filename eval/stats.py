"""A/B statistics for the offline runs and the live store: CIs, tests and readable verdicts.

- ``bootstrap_ci``: percentile bootstrap (resample with replacement ``n_resamples`` times, take
  the ``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles of the statistic); seeded, so the
  same inputs and seed always give the same interval.
- ``diff_ci``: the same for ``statistic(b) - statistic(a)``, resampling each group on its own.
- ``two_proportion_test``: pooled two-proportion z-test, ``z = (p1 - p2) / sqrt(p(1 - p)(1/n1 +
  1/n2))`` with ``p = (x1 + x2)/(n1 + n2)``; two-sided ``p = erfc(|z|/√2)`` (= 2(1 - Φ(|z|)),
  written with ``math.erfc`` to keep precision in the tail).
- ``permutation_test``: two-sided p for the difference of means, ``(1 + #{|perm diff| ≥ |observed
  diff|}) / (1 + n_permutations)`` over seeded random relabellings of the pooled values.
- ``spearman``: Pearson correlation of average ranks (ties share the mean of their ranks).

``compare_variants`` puts them together for one metric column: rates with CIs, the difference in
points (percentage points for 0/1 metrics, the metric's own units otherwise) with its CI, and a
p-value from the two-proportion test (0/1 metrics) or the permutation test (anything else). A
difference is called detectable when its CI excludes 0 *and* p < ``ALPHA``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from eval.metrics import is_missing, require_columns

ALPHA = 0.05
Statistic = Callable[[np.ndarray], Any]

# metric column → (verb for a detectable difference, noun for "no detectable difference in …")
METRIC_WORDS: dict[str, tuple[str, str]] = {
    "resolved": ("resolves", "resolution"),
    "correctly_handled": ("handles correctly", "correct handling"),
    "correct_escalation": ("escalates correctly", "correct escalation"),
    "escalated": ("escalates", "escalation"),
    "clarified": ("clarifies", "clarification"),
    "csat": ("moves CSAT", "CSAT"),
    "csat_proxy": ("moves the CSAT proxy", "the CSAT proxy"),
}


def _array(values: Iterable[float] | np.ndarray, name: str = "values") -> np.ndarray:
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {x.shape}")
    return x


def rankdata(values: Iterable[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks: [10, 20, 20] → [1, 2.5, 2.5]."""
    x = _array(values)
    if np.isnan(x).any():
        raise ValueError("cannot rank NaN; drop the missing values first")
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts_group = np.r_[True, xs[1:] != xs[:-1]] if len(xs) else np.array([], dtype=bool)
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(np.r_[starts, len(xs)])
    ranks = np.empty(len(x))
    ranks[order] = (starts + (sizes + 1) / 2)[group]
    return ranks


def spearman(x: Iterable[float] | np.ndarray, y: Iterable[float] | np.ndarray) -> float:
    """Spearman's rank correlation (Pearson of tie-averaged ranks); NaN when n < 2 or constant."""
    rx, ry = rankdata(x), rankdata(y)
    if len(rx) != len(ry):
        raise ValueError(f"x and y differ in length ({len(rx)} vs {len(ry)})")
    if len(rx) < 2:
        return math.nan
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denom if denom else math.nan


def _quantiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    lo, hi = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Iterable[float] | np.ndarray, statistic: Statistic = np.mean,
    n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic(values)``; (NaN, NaN) for no values."""
    x = _array(values)
    if len(x) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    stats = np.array([float(statistic(x[rng.integers(0, len(x), len(x))]))
                      for _ in range(n_resamples)])
    return _quantiles(stats, confidence)


def diff_ci(
    a: Iterable[float] | np.ndarray, b: Iterable[float] | np.ndarray,
    statistic: Statistic = np.mean, n_resamples: int = 2000, confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic(b) - statistic(a)`` (groups resampled apart)."""
    xa, xb = _array(a, "a"), _array(b, "b")
    if len(xa) == 0 or len(xb) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for i in range(n_resamples):
        sa = xa[rng.integers(0, len(xa), len(xa))]
        sb = xb[rng.integers(0, len(xb), len(xb))]
        stats[i] = float(statistic(sb)) - float(statistic(sa))
    return _quantiles(stats, confidence)


def normal_two_sided_p(z: float) -> float:
    """P(|Z| ≥ |z|) for a standard normal Z: erfc(|z|/√2) = 2(1 - Φ(|z|))."""
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled z-test of x1/n1 against x2/n2 → (z, two-sided p); (NaN, NaN) if a group is empty.

    z is positive when the first proportion is larger. When every outcome in both groups is the
    same (pooled p of 0 or 1) there is no variance and no difference: (0.0, 1.0).

    >>> z, p = two_proportion_test(45, 100, 30, 100)
    >>> round(z, 3), round(p, 4)
    (2.191, 0.0285)
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    if not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError(f"successes must lie within 0..n; got {x1}/{n1} and {x2}/{n2}")
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / se
    return z, normal_two_sided_p(z)


def permutation_test(
    a: Iterable[float] | np.ndarray, b: Iterable[float] | np.ndarray,
    n_permutations: int = 10000, seed: int = 0,
) -> float:
    """Two-sided permutation p for mean(b) - mean(a); NaN when a group is empty."""
    xa, xb = _array(a, "a"), _array(b, "b")
    if len(xa) == 0 or len(xb) == 0:
        return math.nan
    pooled = np.r_[xa, xb]
    total, na, nb = float(pooled.sum()), len(xa), len(xb)
    observed = abs(xb.mean() - xa.mean())
    tolerance = 1e-12 * max(1.0, observed)  # equal diffs must not miss by rounding
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(pooled))
    extreme = done = 0
    while done < n_permutations:
        m = min(chunk, n_permutations - done)
        shuffled = rng.permuted(np.tile(pooled, (m, 1)), axis=1)
        sum_a = shuffled[:, :na].sum(axis=1)
        diffs = (total - sum_a) / nb - sum_a / na
        extreme += int(np.count_nonzero(np.abs(diffs) >= observed - tolerance))
        done += m
    return (extreme + 1) / (n_permutations + 1)


@dataclass(frozen=True)
class Comparison:
    """One metric compared between a control (``variant_a``) and a candidate (``variant_b``).

    Args:
        metric: the compared column. variant_a / variant_b: control and candidate.
        n_a / n_b: values compared (missing values dropped).
        rate_a / rate_b: mean of the metric (a rate for 0/1 metrics), with 95 % bootstrap CIs.
        diff / diff_ci: rate_b - rate_a in points (x100 for 0/1 metrics, else metric units).
        p_value: two-proportion z-test (0/1 metrics) or permutation test (others).
        test: ``"two-proportion z"`` or ``"permutation"``.
        verdict: one readable line (see ``verdict``).

    Example:
        >>> df = pd.DataFrame({"variant": ["a"] * 4 + ["b"] * 4,
        ...                    "resolved": [1, 0, 0, 0, 1, 1, 1, 0]})
        >>> compare_variants(df, "resolved", "a", "b").diff
        50.0
    """

    metric: str
    variant_a: str
    variant_b: str
    n_a: int
    n_b: int
    rate_a: float
    ci_a: tuple[float, float]
    rate_b: float
    ci_b: tuple[float, float]
    diff: float
    diff_ci: tuple[float, float]
    p_value: float
    test: str
    binary: bool
    verdict: str

    @property
    def significant(self) -> bool:
        """The CI of the difference excludes 0 and p < ``ALPHA``."""
        lo, hi = self.diff_ci
        return (lo > 0 or hi < 0) and self.p_value < ALPHA


def format_p(p: float) -> str:
    """``p=0.004``, ``p=0.61``, ``p<0.001``: three decimals below 0.1, two above."""
    if math.isnan(p):
        return "p=n/a"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


def verdict(
    metric: str, variant_a: str, variant_b: str, n_a: int, n_b: int, diff: float,
    ci: tuple[float, float], p: float, binary: bool,
) -> str:
    """The report's line, e.g. ``concise_empathetic resolves +6.1 pts [+2.0, +10.3] vs control,
    p=0.004``, or ``no detectable difference in resolution at n=200 per variant (diff +1.2 pts
    [-3.4, +5.9], p=0.61)``. Continuous metrics print two decimals and no "pts"."""
    verb, noun = METRIC_WORDS.get(metric, (f"changes {metric}", metric))
    if n_a == 0 or n_b == 0:
        return f"cannot compare {noun}: no values for {variant_a if n_a == 0 else variant_b}"
    fmt = "{:+.1f}" if binary else "{:+.2f}"
    unit = " pts" if binary else ""
    spread = f"{fmt.format(diff)}{unit} [{fmt.format(ci[0])}, {fmt.format(ci[1])}]"
    if (ci[0] > 0 or ci[1] < 0) and p < ALPHA:
        return f"{variant_b} {verb} {spread} vs {variant_a}, {format_p(p)}"
    sizes = (f"n={n_a} per variant" if n_a == n_b
             else f"n={n_a} ({variant_a}) and {n_b} ({variant_b})")
    return f"no detectable difference in {noun} at {sizes} (diff {spread}, {format_p(p)})"


def _metric_values(df: pd.DataFrame, metric_column: str, variant: str) -> np.ndarray:
    column = df.loc[df["variant"] == variant, metric_column].tolist()
    try:
        values = [float(v) for v in column if not is_missing(v)]
    except (TypeError, ValueError) as e:
        raise ValueError(f"column {metric_column!r} must hold numbers or booleans") from e
    return np.asarray(values, dtype=float)


def _is_binary(*groups: np.ndarray) -> bool:
    values = np.concatenate(groups)
    return bool(len(values)) and bool(np.isin(values, (0.0, 1.0)).all())


def compare_variants(
    df: pd.DataFrame, metric_column: str, variant_a: str, variant_b: str, *,
    n_resamples: int = 2000, n_permutations: int = 10000, confidence: float = 0.95,
    seed: int = 0, binary: bool | None = None,
) -> Comparison:
    """Compare ``metric_column`` between ``variant_a`` (control) and ``variant_b`` (candidate).

    Args:
        df: rows with a ``variant`` column and ``metric_column`` (bool, 0/1 or numbers; missing
            values are dropped, so ``n_a``/``n_b`` count the values compared).
        metric_column: e.g. ``resolved`` (from ``eval.metrics.resolution.with_outcomes``),
            ``escalated``, ``csat_proxy``.
        variant_a: the control; variant_b: the candidate (differences are b - a).
        binary: treat the metric as 0/1 (points x100, two-proportion test); default: when every
            value is 0 or 1.

    Returns:
        A ``Comparison``; see the module doc for the tests and the verdict rule.
    """
    require_columns(df, ("variant", metric_column), "compare_variants")
    present = set(df["variant"].tolist())
    for v in (variant_a, variant_b):
        if v not in present:
            raise ValueError(f"variant {v!r} has no rows; pick one of {sorted(map(str, present))}")
    a = _metric_values(df, metric_column, variant_a)
    b = _metric_values(df, metric_column, variant_b)
    binary = _is_binary(a, b) if binary is None else binary
    scale = 100.0 if binary else 1.0
    rate_a = float(a.mean()) if len(a) else math.nan
    rate_b = float(b.mean()) if len(b) else math.nan
    lo, hi = diff_ci(a, b, n_resamples=n_resamples, confidence=confidence, seed=seed + 2)
    if binary:
        _, p = two_proportion_test(int(b.sum()), len(b), int(a.sum()), len(a))
    else:
        p = permutation_test(a, b, n_permutations=n_permutations, seed=seed)
    diff, ci = (rate_b - rate_a) * scale, (lo * scale, hi * scale)
    return Comparison(
        metric=metric_column, variant_a=variant_a, variant_b=variant_b, n_a=len(a), n_b=len(b),
        rate_a=rate_a, ci_a=bootstrap_ci(a, n_resamples=n_resamples, confidence=confidence,
                                         seed=seed),
        rate_b=rate_b, ci_b=bootstrap_ci(b, n_resamples=n_resamples, confidence=confidence,
                                         seed=seed + 1),
        diff=diff, diff_ci=ci, p_value=p, test="two-proportion z" if binary else "permutation",
        binary=binary,
        verdict=verdict(metric_column, variant_a, variant_b, len(a), len(b), diff, ci, p, binary),
    )


def segment_breakdown(
    df: pd.DataFrame, metric_column: str, by: Sequence[str] = ("tier", "channel", "category"),
    variants: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Per-segment means of ``metric_column`` for two variants and their difference.

    Args:
        df: rows with ``variant``, ``metric_column`` and each column in ``by``.
        by: segment dimensions, each broken down on its own.
        variants: (control, candidate); default: the two variants in ``df`` when there are two.

    Returns:
        Rows ``dimension``, ``segment``, ``n_a``, ``rate_a``, ``n_b``, ``rate_b``, ``diff``
        (points, b - a, as in ``compare_variants``; NaN where a side has no values). No p-values:
        testing every segment invites false positives; compare a segment with
        ``compare_variants(df[df.tier == 2], …)`` when it was chosen in advance.
    """
    require_columns(df, ("variant", metric_column, *by), "segment_breakdown")
    if variants is None:
        found = list(dict.fromkeys(df["variant"].tolist()))
        if len(found) != 2:
            raise ValueError(f"pass variants=(control, candidate); the rows hold {found}")
        variants = (found[0], found[1])
    va, vb = variants
    scale = 100.0 if _is_binary(_metric_values(df, metric_column, va),
                                _metric_values(df, metric_column, vb)) else 1.0
    out = []
    for dimension in by:
        for segment in sorted(df[dimension].dropna().unique().tolist(), key=str):
            part = df[df[dimension] == segment]
            a = _metric_values(part, metric_column, va)
            b = _metric_values(part, metric_column, vb)
            rate_a = float(a.mean()) if len(a) else math.nan
            rate_b = float(b.mean()) if len(b) else math.nan
            out.append({"dimension": dimension, "segment": segment, "n_a": len(a),
                        "rate_a": rate_a, "n_b": len(b), "rate_b": rate_b,
                        "diff": (rate_b - rate_a) * scale})
    table = pd.DataFrame(out, columns=["dimension", "segment", "n_a", "rate_a", "n_b", "rate_b",
                                       "diff"])
    table.attrs["variants"] = variants
    return table


def outcomes_frame(outcomes: Iterable[Any]) -> pd.DataFrame:
    """The store's ``ConversationOutcome``s as rows ``variant``, ``resolved``, ``escalated``,
    ``csat``: resolved = the customer said resolved (``resolved is True``) and it was not
    escalated (the analytics' hard resolution); csat NaN where the customer gave none."""
    rows = [{
        "variant": o.variant,
        "resolved": o.resolved is True and not o.escalated,
        "escalated": bool(o.escalated),
        "csat": math.nan if o.csat is None else float(o.csat),
    } for o in outcomes]
    return pd.DataFrame(rows, columns=["variant", "resolved", "escalated", "csat"])


def live_comparison(
    outcomes: Iterable[Any], variant_a: str, variant_b: str, *, seed: int = 0,
) -> dict[str, Comparison]:
    """``compare_variants`` on live conversations for ``resolved``, ``escalated`` and ``csat``.

    Args:
        outcomes: objects with ``variant``, ``escalated``, ``resolved`` (bool | None) and
            ``csat`` (int | None), e.g. ``app.store.analytics.ConversationOutcome``.
        variant_a / variant_b: control and candidate.

    Returns:
        ``{"resolution": …, "escalation": …, "csat": …}``; CSAT compares only the
        conversations with a score (``n_a``/``n_b`` say how many).
    """
    frame = outcomes_frame(outcomes)
    return {
        name: compare_variants(frame, column, variant_a, variant_b, seed=seed, binary=binary)
        for name, column, binary in (("resolution", "resolved", True),
                                     ("escalation", "escalated", True), ("csat", "csat", False))
    }
