"""The multi-domain benchmark's data and its pure parts (the end-to-end command is tested in
tests/cli/test_evaluation.py)."""

from __future__ import annotations

import math

import pytest

from eval.domains import (
    TARGETS,
    DomainReport,
    handoff_examples,
    load_domains,
    retrieval_figures,
    table,
)


def test_every_domain_meets_the_benchmark_minimums() -> None:
    domains = {d.name: d for d in load_domains()}
    assert {"lumen", "saas", "bank", "telecom"} <= set(domains)
    for name, d in domains.items():
        assert d.articles.is_dir()
        assert len(d.questions) >= 100, name
        if name != "lumen":  # Lumen's out-of-scope cases come from its labelled cases
            assert len(d.out_of_scope) >= 40, name
            assert {q.style for q in d.questions} >= {"typo", "caps", "terse", "double"}
            assert any(q.history for q in d.questions), name  # follow-ups
        assert all(q.gold for q in d.questions) and not any(q.gold for q in d.out_of_scope)
    examples = handoff_examples(list(domains.values()))
    asks = [e for e in examples if e.asks]
    assert len(asks) >= 200
    assert sum(1 for e in examples if not e.asks and e.domain in
               {"lumen", "saas", "bank", "telecom", "general"}) >= 100


def test_retrieval_figures_count_any_gold_article() -> None:
    got = retrieval_figures([["a", "b"], ["x", "y", "z", "b", "q"], ["n"]],
                            [["a"], ["b", "c"], ["m"]])
    assert got["recall@1"] == pytest.approx(1 / 3)
    assert got["recall@5"] == pytest.approx(2 / 3)
    assert got["mrr"] == pytest.approx((1 + 1 / 4 + 0) / 3)
    assert math.isnan(retrieval_figures([], [])["recall@1"])


def test_the_table_has_a_row_per_domain_and_the_targets() -> None:
    report = DomainReport("saas", figures={name: 0.5 for name in TARGETS})
    lines = table([report]).splitlines()
    assert lines[0].startswith("| domain | recall@1 |")
    assert lines[2].startswith("| saas | 0.500 |")
    assert lines[-1].startswith("| target | >= 0.75 |")


def test_figures_on_a_domain_something_was_fitted_on_are_marked() -> None:
    fitted = DomainReport("lumen", figures={name: 0.5 for name in TARGETS},
                          fitted_here=("confidence calibration",))
    lines = table([fitted]).splitlines()
    assert lines[2].startswith("| lumen* |")
    assert "not a held-out figure" in lines[-1] and "confidence calibration" in lines[-1]
