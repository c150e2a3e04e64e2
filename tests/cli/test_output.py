"""What commands share: ``error: …`` on stderr, and the evaluation extra's absence reported as
the command that installs it (on the core install, simulated by blocking its modules)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.cli.output import EVAL_EXTRA_MODULES, INSTALL_EVAL
from tests.conftest import REPO

WITHOUT_EVAL_EXTRA = """
import sys
for name in {modules!r}:
    sys.modules[name] = None  # "import pandas" now fails as if it were not installed
from app.cli import main
sys.argv = ["supportbot", *{args!r}]
main()
"""


def test_the_eval_extra_modules_are_the_eval_extra() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]["eval"]
    names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("-", "_")
             for requirement in extra}
    assert names == EVAL_EXTRA_MODULES


def without_eval_extra(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTBOT_")}
    env["SUPPORTBOT_DATA_DIR"] = str(tmp_path / "data")
    code = WITHOUT_EVAL_EXTRA.format(modules=sorted(EVAL_EXTRA_MODULES), args=list(args))
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("args", [("eval", "run", "--no-live"), ("eval", "csat")])
def test_eval_commands_without_the_extra_say_how_to_install_it(tmp_path: Path,
                                                               args: tuple[str, ...]) -> None:
    result = without_eval_extra(tmp_path, *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert f"error: {INSTALL_EVAL}" in " ".join(result.stderr.split())


def test_the_retrieval_metrics_need_no_eval_extra(tmp_path: Path) -> None:
    code = ("import sys\n"
            f"for name in {sorted(EVAL_EXTRA_MODULES)!r}: sys.modules[name] = None\n"
            "from eval.metrics.retrieval import evaluate_retrieval, load_questions, recall_at\n"
            "import eval.calibrate\n"
            "print(recall_at(['a', 'b'], {'b'}, 2))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1.0"
