"""``run_experiment`` end to end with Claude (the real anthropic SDK against the fake Messages
API) as both answer model and judge, on the session's sample knowledge base."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH
from eval.experiment import ExperimentResult, run_experiment
from eval.judge import JUDGE_PROMPT
from tests.fakes.claude_server import Behaviour, FakeClaudeServer, RecordedRequest

EVAL_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "eval"
# Three plain questions the assistant answers (so Claude writes every reply).
CLAUDE_CASES = ("case-017", "case-008", "case-025")


def sample_lines(ids: tuple[str, ...]) -> list[str]:
    by_id = {json.loads(line)["id"]: line
             for line in (EVAL_DIR / "cases.jsonl").read_text(encoding="utf-8").splitlines()}
    return [by_id[i] for i in ids]


def write_dataset(path: Path, ids: tuple[str, ...]) -> Path:
    path.write_text("\n".join(sample_lines(ids)) + "\n", encoding="utf-8")
    return path


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
