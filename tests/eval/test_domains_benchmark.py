"""The multi-domain benchmark end to end: every help center through the turn policy, each with
the hand-off classifier and the answer confidence refitted without it (leave one domain out).

It asserts the issue's targets that the engine meets today — retrieval held out (mean recall@1
≥ 0.75, recall@5 ≥ 0.95) with Lumen no worse than before (recall@1 0.740, MRR 0.841), and
answerable questions escalated by mistake ≤ 3 % on average — and, for the targets not met yet,
floors just under today's held-out figures (README, "Help centers other than ours"), so a change
that loses ground on a help center nobody tuned on fails here rather than in a customer's inbox.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.knowledge.embedder import Embedder
from eval.domains import DomainReport, run_domains
from tests.conftest import settings_for

#: the issue's targets met today (mean over held-out help centers)
TARGETS = {"recall@1": (">=", 0.75), "recall@5": (">=", 0.95),
           "escalated_by_mistake": ("<=", 0.03)}
#: floors under today's held-out means, for the targets not met yet (see the README)
FLOORS = {"answered": (">=", 0.86), "clarified": ("<=", 0.12), "oos_not_answered": (">=", 0.60),
          "requests_escalated": (">=", 0.57), "others_escalated": ("<=", 0.07)}


@pytest.fixture(scope="module")
def reports(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
            ) -> list[DomainReport]:
    root: Path = tmp_path_factory.mktemp("domains")
    return run_domains(settings_for(root / "data"), cache=root / "benchmarks",
                       embedder=embedder)


def _mean(reports: list[DomainReport], name: str) -> float:
    return float(np.mean([r.figures[name] for r in reports]))


def _holds(op: str, value: float, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def test_every_help_center_is_measured_held_out(reports: list[DomainReport]) -> None:
    assert [r.domain for r in reports] == ["lumen", "bank", "saas", "telecom"]
    assert not any(r.fitted_here for r in reports)
    for r in reports:
        assert r.n["questions"] >= 100 and r.n["requests"] >= 40, r.n


@pytest.mark.parametrize("name", list(TARGETS))
def test_targets_met_on_held_out_help_centers(reports: list[DomainReport], name: str) -> None:
    op, bound = TARGETS[name]
    assert _holds(op, _mean(reports, name), bound), {r.domain: r.figures[name] for r in reports}


def test_lumen_retrieval_no_worse_than_before(reports: list[DomainReport]) -> None:
    lumen = next(r for r in reports if r.domain == "lumen")
    assert lumen.figures["recall@1"] >= 0.740 and lumen.figures["mrr"] >= 0.841


@pytest.mark.parametrize("name", list(FLOORS))
def test_no_held_out_figure_falls_below_todays_floor(reports: list[DomainReport],
                                                     name: str) -> None:
    op, bound = FLOORS[name]
    assert _holds(op, _mean(reports, name), bound), (
        {r.domain: r.figures[name] for r in reports}, r_misses(reports, name))


def r_misses(reports: list[DomainReport], name: str) -> dict[str, list[str]]:
    key = {"answered": "not_right_top2", "clarified": "clarified",
           "oos_not_answered": "oos_answered", "requests_escalated": "request_missed",
           "others_escalated": "other_escalated"}[name]
    return {r.domain: r.misses[key][:10] for r in reports}
