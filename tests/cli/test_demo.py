"""``supportbot demo seed`` in-process through typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import app
from pipelines.conversations import CONVERSATIONS_DIR, load_conversations


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def squeezed(text: str) -> str:
    return "".join(text.split())


def three_records(tmp_path: Path) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r) + "\n"
                            for r in load_conversations([CONVERSATIONS_DIR])[:3]),
                    encoding="utf-8")
    return path


def test_seed_replays_into_the_configured_store_once(data_dir: Path, tmp_path: Path) -> None:
    records = three_records(tmp_path)
    first = run("demo", "seed", "--conversations", str(records))
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("3 conversations created, 0 finished, 0 already present;")
    assert (data_dir / "supportbot.sqlite3").is_file()
    again = run("demo", "seed", "--conversations", str(records))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("0 conversations created, 0 finished, 3 already present; "
                                   "0 messages")


def test_seed_with_replies_generated_through_the_turn_policy(
        cli_env: Callable[[Path], None], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    result = run("demo", "seed", "--conversations", str(three_records(tmp_path)), "--respond")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("3 conversations created")


def test_seed_respond_on_an_empty_knowledge_base_says_to_ingest(data_dir: Path,
                                                                tmp_path: Path) -> None:
    result = run("demo", "seed", "--conversations", str(three_records(tmp_path)), "--respond")
    assert result.exit_code != 0
    message = squeezed(result.stderr)
    assert squeezed(f"error: the knowledge base in {data_dir} is empty") in message
    assert squeezed("run 'supportbot ingest knowledge/' first, or seed without --respond") in \
        message


def test_seed_with_a_bad_record_names_the_file_and_line(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversation_id": "x"}\n', encoding="utf-8")
    result = run("demo", "seed", "--conversations", str(bad))
    assert result.exit_code != 0
    assert squeezed(f"error: {bad}:1: each line needs an object with a 'turns' list") in \
        squeezed(result.stderr)
