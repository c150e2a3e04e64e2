"""A whole A/B evaluation: ``supportbot eval run`` / ``eval retrieval`` in-process through typer's
CliRunner on the session's sample knowledge base, and ``run_experiment`` with Claude (the real
anthropic SDK against the fake Messages API) as both answer model and judge."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from app.config import Settings, get_settings
from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH
from eval.experiment import ExperimentResult, run_experiment
from eval.judge import JUDGE_PROMPT
from eval.runner import ROWS_FILE
from tests.fakes.claude_server import Behaviour, FakeClaudeServer, RecordedRequest

EVAL_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "eval"
# One case of each kind: single, multi, out_of_scope, ambiguous, angry, human_request.
CLI_CASES = ("case-017", "case-016", "case-015", "case-009", "case-005", "case-010")
# Three plain questions the assistant answers (so Claude writes every reply).
CLAUDE_CASES = ("case-017", "case-008", "case-025")
VERDICT_LINE = re.compile(
    r"- (concise_empathetic (resolves|handles correctly|escalates|moves the CSAT proxy) "
    r"[+-]\d+\.\d+( pts)? \[.+\] vs control, p.+|no detectable difference in .+ at n=\d+ .+)")


def sample_lines(ids: tuple[str, ...]) -> list[str]:
    by_id = {json.loads(line)["id"]: line
             for line in (EVAL_DIR / "cases.jsonl").read_text(encoding="utf-8").splitlines()}
    return [by_id[i] for i in ids]


def write_dataset(path: Path, ids: tuple[str, ...]) -> Path:
    path.write_text("\n".join(sample_lines(ids)) + "\n", encoding="utf-8")
    return path


def squeezed(text: str) -> str:
    return "".join(text.split())


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def cli_env(sample_kb: KnowledgeBase, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Point the CLI's settings at a data dir (the session sample KB by default); cwd in tmp."""

    def use(data_dir: Path) -> None:
        monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(data_dir))
        get_settings.cache_clear()

    monkeypatch.setenv("SUPPORTBOT_VARIANTS_PATH", str(DEFAULT_VARIANTS_PATH))
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    use(sample_kb.settings.data_dir)
    yield use
    get_settings.cache_clear()


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


# ---- with Claude -----------------------------------------------------------------------------

class JudgingClaudeServer(FakeClaudeServer):
    """The fake Messages API; judge requests (the judge's system prompt) get a JSON verdict:
    correct unless the question contains ``wrong_for``. Answer requests keep the fake's default
    (an answer quoting the first passage, citing it)."""

    def __init__(self, wrong_for: str) -> None:
        super().__init__()
        self.wrong_for = wrong_for

    def _record(self, request: RecordedRequest) -> tuple[Behaviour, str]:
        behaviour, number = super()._record(request)
        if request.body.get("system") == JUDGE_PROMPT:
            content = str(request.body["messages"][-1]["content"])
            question = content.split("<question>", 1)[1].split("</question>", 1)[0]
            correct = self.wrong_for not in question
            behaviour = Behaviour.reply(json.dumps({"correct": correct, "reason": "graded"}))
        return behaviour, number


@pytest.fixture(scope="module")
def claude_run(sample_kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[tuple[ExperimentResult, JudgingClaudeServer, Path]]:
    tmp = tmp_path_factory.mktemp("claude-eval")
    dataset = write_dataset(tmp / "three.jsonl", CLAUDE_CASES)
    server = JudgingClaudeServer(wrong_for="crashes")
    server.start()
    try:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, anthropic_api_key="sk-test", claude_base_url=server.url,
            claude_model="claude-test", claude_max_retries=0,
            data_dir=sample_kb.settings.data_dir, variants_path=DEFAULT_VARIANTS_PATH)
        result = run_experiment(settings, ["control", "concise_empathetic"], dataset,
                                tmp / "out", ragas=False, live=False, progress=False)
        yield result, server, tmp / "out"
    finally:
        server.stop()


def test_with_claude_every_reply_comes_from_the_api_and_claude_judges_it(
        claude_run: tuple[ExperimentResult, JudgingClaudeServer, Path]) -> None:
    _, server, out = claude_run
    rows = pd.read_parquet(out / "rows.parquet")
    assert list(zip(rows["case_id"], rows["variant"], strict=True)) == [
        (c, v) for c in CLAUDE_CASES for v in ("control", "concise_empathetic")]
    assert set(rows["provider"]) == {"anthropic"}
    assert set(rows["model"]) == {"claude-test"}
    assert rows["fallback_from"].isna().all()
    assert (rows["input_tokens"] > 0).all() and (rows["output_tokens"] > 0).all()
    assert all(a.startswith("Here is what our help center says:") for a in rows["answer"])
    verdicts = dict(zip(rows["case_id"], rows["judge_correct"], strict=True))
    assert verdicts == {"case-017": True, "case-008": False, "case-025": True}

    judged = [r for r in server.requests if r.body.get("system") == JUDGE_PROMPT]
    answered = [r for r in server.requests if r.body.get("system") != JUDGE_PROMPT]
    assert len(judged) == len(answered) == len(rows)
    assert {r.body["model"] for r in server.requests} == {"claude-test"}
    assert all(r.api_key == "sk-test" for r in server.requests)


def test_with_claude_the_report_uses_the_judges_verdicts(
        claude_run: tuple[ExperimentResult, JudgingClaudeServer, Path]) -> None:
    result, _, out = claude_run
    markdown = result.markdown.read_text(encoding="utf-8")
    assert "- **judge**: Claude" in markdown
    assert "- **answer model**: anthropic" in markdown
    assert len(result.headline) == 4
    rows = pd.read_parquet(out / "rows.parquet")
    scored = pd.read_csv(out / "scored_rows.csv")
    assert list(scored["case_id"]) == list(rows["case_id"])
    expected = [bool(r.judge_correct) and not r.needs_human and r.decision == "answer"
                and bool(set(r.gold_article_ids) & set(r.cited_article_ids))
                for r in rows.itertuples()]
    assert list(scored["resolved"].astype(bool)) == expected
    assert not scored.loc[scored["case_id"] == "case-008", "resolved"].any()  # judged wrong
