"""``supportbot eval run`` / ``retrieval`` / ``calibrate`` / ``csat`` in-process through typer's
CliRunner, on the session's sample knowledge base."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.knowledge.base import KnowledgeBase
from app.responder.confidence import FEATURES
from eval.metrics.csat import DEFAULT_WEIGHTS
from eval.runner import ROWS_FILE
from tests.eval.test_experiment import EVAL_DIR, sample_lines, write_dataset

# One case of each kind: single, multi, out_of_scope, ambiguous, angry, human_request.
CLI_CASES = ("case-017", "case-016", "case-015", "case-009", "case-005", "case-010")
VERDICT_LINE = re.compile(
    r"- (concise_empathetic (resolves|handles correctly|escalates|moves the CSAT proxy) "
    r"[+-]\d+\.\d+( pts)? \[.+\] vs control, p.+|no detectable difference in .+ at n=\d+ .+)")


def squeezed(text: str) -> str:
    return "".join(text.split())


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# ---- supportbot eval run ---------------------------------------------------------------------

def test_eval_run_writes_the_report_and_prints_the_verdicts(
        cli_env: Callable[[Path], None], tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "six.jsonl", CLI_CASES)
    out = tmp_path / "eval-out"
    args = ("eval", "run", "--variants", "control,concise_empathetic", "--dataset",
            str(dataset), "--out", str(out), "--no-live")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    verdicts = [line for line in lines if line.startswith("- ")]
    assert len(verdicts) == 4, result.stdout
    assert all(VERDICT_LINE.fullmatch(line) for line in verdicts), verdicts
    assert any("resolution" in line or " resolves " in line for line in verdicts)
    assert lines[-1] == f"report: {out / 'report.md'} and {out / 'report.html'}"
    assert (out / "report.md").is_file() and (out / "report.html").is_file()

    rows = pd.read_parquet(out / "rows.parquet")
    expected = [(c, v) for c in CLI_CASES for v in ("control", "concise_empathetic")]
    assert list(zip(rows["case_id"], rows["variant"], strict=True)) == expected
    assert set(rows["provider"]) <= {"extractive", "rules"}
    assert rows["judge_correct"].isna().all()  # no key: the offline similarity judge
    assert rows["similarity"].notna().all()
    human = rows[rows["case_id"] == "case-010"]  # "I want a human."
    assert human["escalated"].all()
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert f"- **dataset**: {dataset}" in markdown
    assert "- **answer model**: extractive" in markdown
    assert "- **judge**: offline (embedding similarity)" in markdown
    assert "- **cases**: 6" in markdown
    assert "## Live data" not in markdown
    quality = pd.read_csv(out / "quality.csv")
    assert {"rouge_l", "string_similarity", "context_recall"} <= set(quality.columns)

    # Run again: every row is kept, nothing is appended twice, the same verdicts come out.
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert len((out / ROWS_FILE).read_text(encoding="utf-8").splitlines()) == len(expected)
    assert [line for line in again.stdout.splitlines() if line.startswith("- ")] == verdicts


def test_eval_run_with_an_unknown_variant_names_the_valid_ones(
        cli_env: Callable[[Path], None], tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "one.jsonl", CLI_CASES[:1])
    result = invoke("eval", "run", "--variants", "control,bold_new_tone", "--dataset",
                    str(dataset), "--out", str(tmp_path / "out"), "--no-live")
    assert result.exit_code != 0
    assert "unknown variant 'bold_new_tone'" in result.stderr
    assert squeezed("use one of: control, concise_empathetic") in squeezed(result.stderr)
    assert not (tmp_path / "out" / "report.md").exists()


def test_eval_run_without_variants_says_how_to_name_them(
        cli_env: Callable[[Path], None], tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "one.jsonl", CLI_CASES[:1])
    result = invoke("eval", "run", "--variants", " , ", "--dataset", str(dataset), "--out",
                    str(tmp_path / "out"), "--no-live")
    assert result.exit_code != 0
    assert "--variants control,candidate" in result.stderr


def test_eval_run_on_an_empty_knowledge_base_says_to_ingest(
        cli_env: Callable[[Path], None], tmp_path: Path) -> None:
    empty = tmp_path / "empty-data"
    cli_env(empty)
    dataset = write_dataset(tmp_path / "one.jsonl", CLI_CASES[:1])
    result = invoke("eval", "run", "--dataset", str(dataset), "--out", str(tmp_path / "out"),
                    "--no-live")
    assert result.exit_code != 0
    message = squeezed(result.stderr)
    assert squeezed(f"the knowledge base in {empty} is empty") in message
    assert squeezed("run 'supportbot ingest knowledge/' first") in message


def test_eval_run_with_a_bad_dataset_names_the_file_and_line(
        cli_env: Callable[[Path], None], tmp_path: Path) -> None:
    dataset = tmp_path / "bad.jsonl"
    dataset.write_text(sample_lines(CLI_CASES[:1])[0] + "\n"
                       + json.dumps({"id": "x", "turns": ["hi"], "kind": "rant"}) + "\n",
                       encoding="utf-8")
    result = invoke("eval", "run", "--dataset", str(dataset), "--out", str(tmp_path / "out"),
                    "--no-live")
    assert result.exit_code != 0
    assert squeezed(f"{dataset}:2: case 'x' has kind 'rant'") in squeezed(result.stderr)


# ---- supportbot eval retrieval ---------------------------------------------------------------

def five_questions(tmp_path: Path) -> Path:
    questions = tmp_path / "questions.jsonl"
    lines = (EVAL_DIR / "retrieval_questions.jsonl").read_text(encoding="utf-8").splitlines()
    questions.write_text("\n".join(lines[:5]) + "\n", encoding="utf-8")
    return questions


def retrieval_report(questions: Path, k: int) -> dict[str, Any]:
    result = invoke("eval", "retrieval", "--questions", str(questions), "--k", str(k), "--json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    assert (report["n"], report["k"]) == (5, k)
    assert set(report["modes"]) == {"lexical", "dense", "hybrid"}
    return report


def test_eval_retrieval_prints_recall_and_mrr_per_mode(cli_env: Callable[[Path], None],
                                                       tmp_path: Path) -> None:
    report = retrieval_report(five_questions(tmp_path), k=3)
    for mode, scores in report["modes"].items():
        assert set(scores) == {"recall@1", "recall@3", "recall@5", "mrr"}, mode
        for name in ("recall@1", "recall@3", "recall@5"):  # a mean over 5 hits and misses
            assert scores[name] * 5 == pytest.approx(round(scores[name] * 5)), (mode, name)
        assert 0.0 <= scores["recall@1"] <= scores["recall@3"] <= scores["recall@5"] <= 1.0
        assert scores["recall@1"] <= scores["mrr"] <= scores["recall@5"]
    assert report["modes"]["hybrid"]["recall@5"] >= 0.6


def test_eval_retrieval_with_k_5_prints_recall_at_most_one(cli_env: Callable[[Path], None],
                                                            tmp_path: Path) -> None:
    report = retrieval_report(five_questions(tmp_path), k=5)
    for mode, scores in report["modes"].items():
        assert set(scores) == {"recall@1", "recall@5", "mrr"}, mode
        assert 0.0 <= scores["recall@1"] <= scores["mrr"] <= scores["recall@5"] <= 1.0, mode


def test_eval_retrieval_with_a_bad_question_line_names_it(cli_env: Callable[[Path], None],
                                                          tmp_path: Path) -> None:
    questions = tmp_path / "questions.jsonl"
    questions.write_text(json.dumps({"id": "q", "question": "where is my order"}) + "\n",
                         encoding="utf-8")
    result = invoke("eval", "retrieval", "--questions", str(questions), "--json")
    assert result.exit_code != 0
    assert squeezed(f"{questions}:1:") in squeezed(result.stderr)
    assert "gold_article_ids" in result.stderr




# ---- supportbot eval calibrate ---------------------------------------------------------------

def test_eval_calibrate_fits_on_the_labelled_sets(cli_env: Callable[[Path], None],
                                                  sample_kb: KnowledgeBase) -> None:
    result = invoke("eval", "calibrate", "--data-dir", str(sample_kb.settings.data_dir))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    questions = len((EVAL_DIR / "retrieval_questions.jsonl").read_text().splitlines())
    unanswerable = sum(json.loads(line)["kind"] in ("out_of_scope", "ambiguous")
                       for line in (EVAL_DIR / "cases.jsonl").read_text().splitlines())
    assert report["n"] == questions + unanswerable
    assert report["held_out"] == report["n"] // 3
    assert 0 < report["positives"] < report["n"]
    assert 0.0 <= report["brier"] <= 0.25 and 0.0 <= report["ece"] <= 1.0
    assert report["accuracy@0.5"] > 0.5
    calibration = report["calibration"]
    assert calibration["features"] == list(FEATURES)
    assert len(calibration["weights"]) == len(FEATURES)
    assert isinstance(calibration["bias"], float)


# ---- supportbot eval csat --------------------------------------------------------------------

def test_eval_csat_refits_the_shipped_weights(cli_env: Callable[[Path], None]) -> None:
    result = invoke("eval", "csat")
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)
    assert fitted["weights"] == pytest.approx(DEFAULT_WEIGHTS)  # the constants are this fit
    assert fitted["report"]["n_rated"] == fitted["report"]["n_train"] + fitted["report"][
        "n_holdout"]
    assert set(fitted["report"]["fixed"]) == {"resolved", "latency_s"}


def test_eval_csat_with_a_bad_record_names_the_file_and_line(cli_env: Callable[[Path], None],
                                                             tmp_path: Path) -> None:
    bad = tmp_path / "history.jsonl"
    bad.write_text(json.dumps({"conversation_id": "c1", "turns": []}) + "\n{oops\n",
                   encoding="utf-8")
    result = invoke("eval", "csat", "--conversations", str(bad))
    assert result.exit_code != 0
    assert squeezed(f"error: {bad}:2:") in squeezed(result.stderr)


# ---- supportbot eval domains -----------------------------------------------------------------

def test_eval_domains_measures_a_held_out_help_center(data_dir: Path) -> None:
    """One benchmark domain ingested into its own data dir and answered through the turn
    policy, with the hand-off classifier fitted without it; JSON and tables agree."""
    got = invoke("eval", "domains", "--only", "saas", "--json")
    assert got.exit_code == 0, got.output
    (report,) = json.loads(got.output)
    assert report["domain"] == "saas"
    assert report["n"]["questions"] >= 100 and report["n"]["out_of_scope"] >= 40
    assert report["n"]["requests"] >= 40
    figures = report["figures"]
    assert all(0.0 <= v <= 1.0 for v in figures.values()), figures
    # answered + clarified + escalated by mistake cover every answerable question
    assert figures["answered"] + figures["clarified"] + figures["escalated_by_mistake"] == (
        pytest.approx(1.0))
    assert figures["right_top2"] <= figures["answered"]
    assert (data_dir / "benchmarks" / "saas" / "manifest.sqlite3").exists()

    again = invoke("eval", "domains", "--only", "saas")  # incremental: nothing re-embedded
    assert again.exit_code == 0, again.output
    assert "saas" in again.output and "right_top2" in again.output
    assert f"{figures['recall@1']:.3f}" in again.output

    # The answer confidence, refitted on the four help centers now ingested, leave one out.
    plot = data_dir / "reliability.png"
    fitted = invoke("eval", "calibrate", "--domains", "--plot", str(plot))
    assert fitted.exit_code == 0, fitted.output
    calibration = json.loads(fitted.output)
    assert set(calibration["domains"]) == {"lumen", "saas", "bank", "telecom"}
    assert all(0.0 <= d["brier"] <= 0.25 for d in calibration["domains"].values())
    assert set(calibration["threshold_held_out"]) == set(calibration["domains"])
    assert sum(r["n"] for r in calibration["reliability"]) == sum(
        d["n"] for d in calibration["domains"].values())
    curve = calibration["curve"]  # a stricter threshold answers less and refuses more
    assert curve[0]["mean"]["answered"] >= curve[-1]["mean"]["answered"]
    assert curve[0]["mean"]["oos_not_answered"] <= curve[-1]["mean"]["oos_not_answered"]
    assert len(calibration["calibration"]["weights"]) == len(FEATURES)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_handoff_prints_held_out_figures_and_saves_only_when_asked(
        data_dir: Path) -> None:
    from app.responder.handoff import ARTEFACT

    existed = ARTEFACT.exists()
    got = invoke("eval", "handoff")
    assert got.exit_code == 0, got.output
    for domain in ("lumen", "saas", "bank", "telecom"):
        assert domain in got.output
    assert "threshold" in got.output and "saved" not in got.output
    assert ARTEFACT.exists() == existed  # nothing written without --save
