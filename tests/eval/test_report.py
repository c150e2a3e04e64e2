"""The A/B report on hand-built rows whose outcomes are known: 30 cases per variant, the control
resolving 10 and the candidate 25, both escalating the same 5 cases that need a person."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from eval.metrics.resolution import SIMILARITY_THRESHOLD
from eval.report import LIST_COLUMNS, Report, build_report, normalise_rows

CONTROL, CANDIDATE = "control", "concise_empathetic"
VARIANTS = [CONTROL, CANDIDATE]
N = 30
TABLES = ("retrieval", "resolution", "escalation", "quality", "latency", "comparisons",
          "scored_rows")


def row(case: int, variant: str, outcome: str) -> dict[str, Any]:
    """One runner row. ``resolved``: a correct answer citing the gold article; ``wrong``: an
    answer citing another article; ``escalated``: a case that needs a person, handed off."""
    n = f"c{case:02d}"
    gold = [f"art-{case % 6}"]
    base: dict[str, Any] = {
        "case_id": n, "variant": variant, "kind": "single", "tier": 1 + case % 2,
        "category": ["billing", "orders", "returns"][case % 3],
        "channel": ["web", "sms"][case % 2], "persona": "", "gold_sentiment": "neutral",
        "needs_human": False, "human_reason": None, "gold_article_ids": gold,
        "reference_answer": f"Reference answer for case {case}.",
        "question": f"Question {case}?", "n_turns": 1, "clarified": False,
        "sentiment_scores": [0.0], "latency_ms": 120.0, "confidence": 0.7,
        "provider": "extractive", "model": "extractive-v1", "fallback_from": None,
        "input_tokens": 0, "output_tokens": 0, "judge_correct": None,
        "contexts": [f"Passage about case {case}."],
        "reference_contexts": [f"Gold passage for case {case}."], "wall_ms": 150.0,
    }
    if outcome == "resolved":
        return {**base, "answer": f"Answer {case}.", "decision": "answer", "escalated": False,
                "escalation_reason": None, "cited_article_ids": gold,
                "retrieved_ids": [*gold, "art-x"], "similarity": 0.82,
                "turns_to_resolution": 1}
    if outcome == "wrong":
        return {**base, "answer": f"Off-topic answer {case}.", "decision": "answer",
                "escalated": False, "escalation_reason": None, "cited_article_ids": ["art-x"],
                "retrieved_ids": ["art-x", *gold], "similarity": 0.31,
                "turns_to_resolution": None}
    assert outcome == "escalated"
    return {**base, "needs_human": True, "human_reason": "explicit_request",
            "answer": "I'm passing you to a person.", "decision": "escalate",
            "escalated": True, "escalation_reason": "explicit_request", "cited_article_ids": [],
            "retrieved_ids": ["art-x"], "similarity": 0.2, "turns_to_resolution": None}


def outcomes(resolved: int) -> list[str]:
    return ["resolved"] * resolved + ["wrong"] * (N - 5 - resolved) + ["escalated"] * 5


def make_rows() -> pd.DataFrame:
    rows = [row(i + 1, v, outcome) for v, plan in ((CONTROL, outcomes(10)),
                                                   (CANDIDATE, outcomes(25)))
            for i, outcome in enumerate(plan)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return make_rows()


@pytest.fixture(scope="module")
def report(rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Report:
    return build_report(rows, tmp_path_factory.mktemp("report"), VARIANTS,
                        threshold=SIMILARITY_THRESHOLD, ragas=False,
                        meta={"dataset": "hand-built"})


def comparison(report: Report, metric: str) -> Any:
    [found] = [c for c in report.comparisons if c.metric == metric]
    return found


def verdict_lines(markdown: str) -> list[str]:
    section = markdown.split("## Verdict\n", 1)[1].split("\n## ", 1)[0]
    return [line[2:] for line in section.splitlines() if line.startswith("- ")]


def test_the_candidate_resolves_more_with_a_significant_positive_difference(
        report: Report) -> None:
    resolved = comparison(report, "resolved")
    assert (resolved.variant_a, resolved.variant_b, resolved.n_a, resolved.n_b) == (
        CONTROL, CANDIDATE, N, N)
    assert resolved.rate_a == pytest.approx(10 / 30) and resolved.rate_b == pytest.approx(25 / 30)
    assert resolved.diff == pytest.approx(50.0)
    assert resolved.diff_ci[0] > 0 and resolved.p_value < 0.05 and resolved.significant
    escalated = comparison(report, "escalated")
    assert escalated.diff == 0 and not escalated.significant


def test_the_markdown_verdict_says_who_resolves_more_and_where_there_is_no_difference(
        report: Report) -> None:
    assert report.markdown == report.markdown.parent / "report.md"
    markdown = report.markdown.read_text(encoding="utf-8")
    assert markdown.startswith("# supportbot A/B evaluation report")
    lines = verdict_lines(markdown)
    assert len(lines) == 4  # resolution, correct handling, escalation, CSAT proxy
    [resolves] = [line for line in lines if " resolves " in line]
    found = re.fullmatch(
        r"concise_empathetic resolves \+(\d+\.\d) pts \[\+(\d+\.\d), \+(\d+\.\d)\] vs control, "
        r"p(<0\.001|=0\.0[0-4]\d)", resolves)
    assert found, resolves
    assert float(found.group(1)) == pytest.approx(50.0)
    assert 0 < float(found.group(2)) < 50.0 < float(found.group(3))
    assert ("no detectable difference in escalation at n=30 per variant (diff +0.0 pts"
            in markdown)
    assert any(line.startswith("concise_empathetic handles correctly +50.0 pts")
               for line in lines)
    assert "- **dataset**: hand-built" in markdown
    assert "- **cases**: 30" in markdown
    for section in ("## Comparisons", "## Retrieval", "## Resolution", "## Escalation",
                    "## Quality", "## Latency", "## Resolution by segment (concise_empathetic "
                    "vs control)", "## Definitions"):
        assert section in markdown


def test_the_html_is_self_contained_with_three_embedded_plots(report: Report) -> None:
    assert report.html.name == "report.html"
    page = report.html.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n") for png in images)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "concise_empathetic resolves +50.0 pts" in page
    assert "no detectable difference in escalation" in page


def test_the_raw_tables_are_written_as_csv(report: Report) -> None:
    out = report.markdown.parent
    for name in TABLES:
        assert (out / f"{name}.csv").is_file(), name
    resolution = pd.read_csv(out / "resolution.csv").set_index("variant")
    assert resolution.loc[CONTROL, "resolution_rate"] == pytest.approx(10 / 30)
    assert resolution.loc[CANDIDATE, "resolution_rate"] == pytest.approx(25 / 30)
    assert list(resolution["correct_escalations"]) == [5, 5]
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert set(comparisons["metric"]) == {"resolved", "correctly_handled", "escalated",
                                          "csat_proxy", "similarity", "latency_ms"}
    assert set(comparisons["candidate"]) == {CANDIDATE}
    scored = pd.read_csv(out / "scored_rows.csv")
    assert len(scored) == 2 * N
    assert scored.groupby("variant")["resolved"].sum().to_dict() == {CANDIDATE: 25,
                                                                      CONTROL: 10}
    assert set(report.tables) == set(TABLES) - {"scored_rows"}


def test_an_unknown_variant_is_refused_by_name(rows: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no_such_variant"):
        build_report(rows, tmp_path, [CONTROL, "no_such_variant"],
                     threshold=SIMILARITY_THRESHOLD, ragas=False)
    assert not (tmp_path / "report.md").exists()


def test_parquet_rows_with_numpy_list_cells_give_the_same_report(
        rows: pd.DataFrame, report: Report, tmp_path: Path) -> None:
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    loaded = pd.read_parquet(tmp_path / "rows.parquet")
    assert isinstance(loaded["cited_article_ids"].iloc[0], np.ndarray)
    normal = normalise_rows(loaded)
    for column in LIST_COLUMNS:
        assert all(isinstance(v, list) for v in normal[column]), column
        assert list(normal[column]) == list(rows[column]), column
    assert isinstance(loaded["cited_article_ids"].iloc[0], np.ndarray)  # input left alone
    again = build_report(loaded, tmp_path / "out", VARIANTS, threshold=SIMILARITY_THRESHOLD,
                         ragas=False)
    assert [(c.metric, c.diff, c.p_value) for c in again.comparisons] == [
        (c.metric, c.diff, c.p_value) for c in report.comparisons]


def test_normalise_rows_makes_missing_list_cells_empty() -> None:
    frame = pd.DataFrame({"cited_article_ids": [np.array(["a"]), None, float("nan")],
                          "answer": ["x", "y", "z"]})
    assert normalise_rows(frame)["cited_article_ids"].tolist() == [["a"], [], []]
