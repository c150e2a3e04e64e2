"""The ``supportbot`` entry point: the command tree, and one real run of the installed console
script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app

TREE = {
    (): ("ingest", "search", "stats", "serve", "eval", "demo"),
    ("eval",): ("run", "retrieval", "calibrate", "csat"),
    ("demo",): ("seed",),
}


@pytest.mark.parametrize(("group", "commands"), TREE.items())
def test_help_lists_every_command_of_the_group(group: tuple[str, ...],
                                               commands: tuple[str, ...],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(app, [*group, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listed = [line.split()[1] for line in result.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 1
              and not line.split()[1].startswith("-")]
    assert [c for c in listed if c in commands] == list(commands), result.stdout


def test_a_group_without_a_command_shows_its_help() -> None:
    result = CliRunner().invoke(app, ["eval"])
    assert "calibrate" in result.output and "csat" in result.output


@pytest.mark.slow
def test_console_script_end_to_end(tmp_path: Path, small_corpus: Path,
                                   small_corpus_ids: set[str]) -> None:
    exe = Path(sys.executable).parent / "supportbot"
    assert exe.exists(), f"console script not installed next to {sys.executable}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env["SUPPORTBOT_DATA_DIR"] = str(tmp_path / "data")

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    ingested = call("ingest", str(small_corpus), "--json")
    assert ingested.returncode == 0, ingested.stderr
    summary = json.loads(ingested.stdout)
    assert summary["added"] == len(small_corpus_ids) and summary["failed"] == 0

    searched = call("search", "pair my smart lamp with the router", "--k", "3", "--json")
    assert searched.returncode == 0, searched.stderr
    results = json.loads(searched.stdout)["results"]
    assert results[0]["article_id"] == "lamp-pairing"
