"""A/B statistics: hand-computed tests, determinism, and the verdict lines."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from app.store.analytics import ConversationOutcome
from eval.stats import (
    bootstrap_ci,
    compare_variants,
    diff_ci,
    format_p,
    live_comparison,
    permutation_test,
    rankdata,
    segment_breakdown,
    spearman,
    two_proportion_test,
    verdict,
)

# --- ranks and Spearman -------------------------------------------------------------------------


def test_rankdata_averages_ties() -> None:
    assert rankdata([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    assert rankdata([3, 1, 2]).tolist() == [3, 1, 2]
    assert rankdata([5, 5, 5]).tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="NaN"):
        rankdata([1.0, math.nan])


def test_spearman_with_ties_by_hand() -> None:
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]; deviations from 2.5:
    # dx = [-1.5, 0, 0, 1.5], dy = [-1.5, -0.5, 0.5, 1.5]
    # r = (2.25 + 2.25) / sqrt(4.5 · 5) = 4.5 / 4.74342 = 0.94868
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.94868, abs=1e-5)


def test_spearman_edges() -> None:
    assert spearman([1, 2, 3], [1, 8, 27]) == pytest.approx(1.0)  # monotone, not linear
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))  # constant: undefined
    assert math.isnan(spearman([1], [2]))


def test_spearman_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    x, y = rng.integers(1, 6, 80), rng.integers(1, 6, 80)  # many ties
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)


# --- bootstrap --------------------------------------------------------------------------------


def test_bootstrap_is_deterministic_with_the_seed() -> None:
    values = [0.3, 1.7, 2.2, 0.9, 1.1, 3.4, 2.8, 0.2, 1.9, 0.6]
    assert bootstrap_ci(values, seed=5) == bootstrap_ci(values, seed=5)
    assert bootstrap_ci(values, seed=5) != bootstrap_ci(values, seed=6)  # the seed matters


def test_bootstrap_ci_covers_the_true_mean_of_a_large_sample() -> None:
    values = np.random.default_rng(11).normal(10.0, 2.0, 5000)
    lo, hi = bootstrap_ci(values, n_resamples=1000)
    assert lo < 10.0 < hi
    # width ≈ 2 · 1.96 · 2/sqrt(5000) = 0.111
    assert hi - lo == pytest.approx(0.111, abs=0.02)


def test_bootstrap_edges() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([3.0]) == (3.0, 3.0)
    assert bootstrap_ci([1, 2, 3, 100], statistic=np.median, seed=1)[1] <= 100
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1, 2], confidence=95)


def test_diff_ci() -> None:
    assert diff_ci(np.zeros(50), np.ones(50)) == (1.0, 1.0)  # no spread in either group
    a, b = [0, 1, 0, 0, 1], [1, 1, 0, 1, 1]
    assert diff_ci(a, b, seed=2) == diff_ci(a, b, seed=2)
    lo, hi = diff_ci(a, b)
    assert -1 <= lo <= 0.4 <= hi <= 1  # 0.8 - 0.4 = 0.4 inside
    assert all(math.isnan(v) for v in diff_ci([], [1.0]))


# --- tests ------------------------------------------------------------------------------------


def test_two_proportion_textbook() -> None:
    # p = 75/200 = 0.375; se = sqrt(0.375 · 0.625 · (1/100 + 1/100)) = 0.068465
    # z = (0.45 - 0.30) / 0.068465 = 2.19089; p = 2 (1 - Φ(2.19089)) = 0.02846
    z, p = two_proportion_test(45, 100, 30, 100)
    assert z == pytest.approx(2.19089, abs=1e-4)
    assert p == pytest.approx(0.02846, abs=1e-4)
    assert two_proportion_test(30, 100, 45, 100)[0] == pytest.approx(-z)


def test_two_proportion_edges() -> None:
    assert two_proportion_test(0, 10, 0, 20) == (0.0, 1.0)  # no variance, no difference
    assert two_proportion_test(10, 10, 20, 20) == (0.0, 1.0)
    assert all(math.isnan(v) for v in two_proportion_test(0, 0, 1, 2))
    with pytest.raises(ValueError, match="within"):
        two_proportion_test(11, 10, 1, 2)


def test_permutation_identical_groups_is_one() -> None:
    assert permutation_test([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0  # observed diff 0: all as extreme


def test_permutation_separated_groups_is_small() -> None:
    p = permutation_test(range(1, 11), range(101, 111))
    assert p < 0.01
    assert p == pytest.approx(1 / 10001, abs=5e-4)  # only the observed split is as extreme


def test_permutation_small_case_by_hand() -> None:
    # pooled [0, 0, 1, 1]: of the 6 ways to split it 2/2, the two splits {0,0}|{1,1} and
    # {1,1}|{0,0} reach |diff| = 1, so the exact p is 2/6 = 1/3.
    p = permutation_test([0, 0], [1, 1], n_permutations=20000, seed=4)
    assert p == pytest.approx(1 / 3, abs=0.015)
    assert permutation_test([0, 0], [1, 1], seed=4) == permutation_test([0, 0], [1, 1], seed=4)
    assert math.isnan(permutation_test([], [1]))


# --- verdicts and comparisons ------------------------------------------------------------------


def test_verdict_strings_for_both_branches() -> None:
    assert verdict("resolved", "control", "concise_empathetic", 200, 200, 6.1, (2.0, 10.3),
                   0.004, binary=True) == (
        "concise_empathetic resolves +6.1 pts [+2.0, +10.3] vs control, p=0.004")
    assert verdict("resolved", "control", "concise_empathetic", 200, 200, 1.2, (-3.4, 5.9),
                   0.61, binary=True) == (
        "no detectable difference in resolution at n=200 per variant "
        "(diff +1.2 pts [-3.4, +5.9], p=0.61)")
    # a CI that excludes 0 is not enough without p < 0.05
    assert verdict("escalated", "a", "b", 50, 40, -8.0, (-15.0, -1.0), 0.07,
                   binary=True).startswith("no detectable difference in escalation at n=50 (a)")
    assert verdict("csat", "a", "b", 30, 30, 0.456, (0.1, 0.8), 0.01, binary=False) == (
        "b moves CSAT +0.46 [+0.10, +0.80] vs a, p=0.010")


def test_format_p() -> None:
    assert [format_p(p) for p in (0.0004, 0.004, 0.0285, 0.61)] == [
        "p<0.001", "p=0.004", "p=0.029", "p=0.61"]


def _ab(successes_a: int, successes_b: int, n: int = 200) -> pd.DataFrame:
    return pd.DataFrame({
        "variant": ["control"] * n + ["candidate"] * n,
        "resolved": [True] * successes_a + [False] * (n - successes_a)
        + [True] * successes_b + [False] * (n - successes_b),
    })


def test_compare_variants_detects_a_difference() -> None:
    # 60/200 = 30 % vs 90/200 = 45 %: diff +15.0 pts; pooled p = 150/400 = 0.375,
    # se = sqrt(0.375 · 0.625 · 2/200) = 0.048412, z = 3.0984, p = 0.00195
    c = compare_variants(_ab(60, 90), "resolved", "control", "candidate")
    assert (c.n_a, c.n_b, c.rate_a, c.rate_b) == (200, 200, 0.3, 0.45)
    assert c.diff == pytest.approx(15.0)
    assert c.p_value == pytest.approx(0.00195, abs=1e-4)
    assert c.test == "two-proportion z" and c.binary and c.significant
    assert c.ci_a[0] < 0.3 < c.ci_a[1] and c.diff_ci[0] > 0
    expected = (f"candidate resolves +15.0 pts [{c.diff_ci[0]:+.1f}, {c.diff_ci[1]:+.1f}] "
                "vs control, p=0.002")
    assert c.verdict == expected
    assert c == compare_variants(_ab(60, 90), "resolved", "control", "candidate")  # seeded


def test_compare_variants_no_difference() -> None:
    # 60 vs 62 of 200: diff +1.0 pts; pooled p = 0.305, se = 0.046041, z = 0.2172, p = 0.828
    c = compare_variants(_ab(60, 62), "resolved", "control", "candidate")
    assert c.p_value == pytest.approx(0.828, abs=1e-3)
    assert not c.significant
    assert re.fullmatch(r"no detectable difference in resolution at n=200 per variant "
                        r"\(diff \+1\.0 pts \[-\d+\.\d, \+\d+\.\d\], p=0\.83\)", c.verdict)


def test_compare_variants_continuous_uses_permutation() -> None:
    df = pd.DataFrame({"variant": ["a"] * 5 + ["b"] * 5,
                       "csat_proxy": [3.0, 3.5, 4.0, 3.2, None, 4.0, 4.5, 4.2, 4.8, 4.1]})
    c = compare_variants(df, "csat_proxy", "a", "b", n_permutations=2000)
    assert c.test == "permutation" and not c.binary
    assert c.n_a == 4  # the missing value is dropped
    assert c.diff == pytest.approx(4.32 - 3.425)  # means 21.6/5 and 13.7/4


def test_compare_variants_validation() -> None:
    df = _ab(1, 2, n=5)
    with pytest.raises(ValueError, match="'escalated'"):
        compare_variants(df, "escalated", "control", "candidate")
    with pytest.raises(ValueError, match="'nope'"):
        compare_variants(df, "resolved", "control", "nope")


def test_segment_breakdown_by_hand() -> None:
    df = pd.DataFrame({
        "variant": ["a", "a", "b", "b", "a"],
        "tier": [1, 1, 1, 1, 2],
        "resolved": [1, 0, 1, 1, 0],
    })
    table = segment_breakdown(df, "resolved", by=("tier",), variants=("a", "b"))
    t1 = table[table["segment"] == 1].iloc[0]
    assert (t1["n_a"], t1["rate_a"], t1["n_b"], t1["rate_b"]) == (2, 0.5, 2, 1.0)
    assert t1["diff"] == 50.0  # (1.0 - 0.5) x 100 points
    t2 = table[table["segment"] == 2].iloc[0]
    assert t2["n_b"] == 0 and math.isnan(t2["rate_b"]) and math.isnan(t2["diff"])
    with pytest.raises(ValueError, match="'channel'"):
        segment_breakdown(df, "resolved", variants=("a", "b"))


def _outcome(variant: str, escalated: bool, resolved: bool | None,
             csat: int | None) -> ConversationOutcome:
    return ConversationOutcome(
        conversation_id=f"{variant}-{escalated}-{resolved}-{csat}", variant=variant,
        channel="web", created_at=datetime(2026, 1, 1, tzinfo=UTC), escalated=escalated,
        resolved=resolved, csat=csat, returned=False, window_elapsed=True,
        first_response_s=1.0)


def test_live_comparison_by_hand() -> None:
    outcomes = [
        _outcome("control", False, True, 5),  # resolved
        _outcome("control", True, True, 3),  # said resolved but escalated: not resolved
        _outcome("control", False, None, None),
        _outcome("control", True, False, None),
        _outcome("v2", False, True, 4),
        _outcome("v2", False, True, None),
    ]
    live = live_comparison(outcomes, "control", "v2")
    assert live["resolution"].rate_a == 0.25 and live["resolution"].rate_b == 1.0  # 1/4, 2/2
    assert live["resolution"].diff == pytest.approx(75.0)
    assert live["escalation"].rate_a == 0.5 and live["escalation"].rate_b == 0.0  # 2/4, 0/2
    csat = live["csat"]
    assert (csat.n_a, csat.n_b, csat.rate_a, csat.rate_b) == (2, 1, 4.0, 4.0)  # (5+3)/2, 4/1
    assert csat.test == "permutation" and csat.diff == 0.0
