"""The analyst notebooks run top to bottom on sample data and are committed without outputs.

The data: a SQLite store seeded by ``app.demo.seed_store`` with the past conversations,
and a small offline A/B run (12 cases, both variants, ragas on) over the session's sample KB.
The notebooks read them through ``SUPPORTBOT_DATA_DIR`` / ``SUPPORTBOT_EVAL_DIR``, passed in the
kernel's environment. The kernel is ipykernel's own spec for this interpreter
(``sys.executable``), so no kernelspec installed on the machine can swap in another Python.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH
from eval.experiment import run_experiment
from pipelines.conversations import load_conversations
from tests.conftest import KNOWLEDGE, REPO

NOTEBOOKS = REPO / "notebooks"
NAMES = ("ab_test_analysis.ipynb", "support_analytics.ipynb")
VARIANTS = ["control", "concise_empathetic"]
HISTORY = KNOWLEDGE / "conversations"


# ---- running a notebook ------------------------------------------------------------------

def execute(name: str, data_dir: Path, eval_dir: Path) -> nbformat.NotebookNode:
    """Run the committed notebook in a fresh kernel from the repository root; a failing cell
    raises ``CellExecutionError`` with its traceback."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = {**os.environ, "SUPPORTBOT_DATA_DIR": str(data_dir),
           "SUPPORTBOT_EVAL_DIR": str(eval_dir),
           "DATABASE_URL": ""}  # a developer's .env must not point the notebook elsewhere
    km = AsyncKernelManager(kernel_name="python3",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    NotebookClient(nb, km=km, timeout=300,
                   resources={"metadata": {"path": str(REPO)}}).execute(env=env)
    return nb


def outputs(nb: nbformat.NotebookNode) -> Iterator[dict[str, Any]]:
    for cell in nb.cells:
        yield from cell.get("outputs", [])


def printed(nb: nbformat.NotebookNode) -> str:
    return "".join(o["text"] for o in outputs(nb) if o["output_type"] == "stream"
                   and o["name"] == "stdout")


def figures(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


def assert_clean_run(nb: nbformat.NotebookNode) -> None:
    errors = [o for o in outputs(nb) if o["output_type"] == "error"]
    assert not errors, errors
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell did not run"


# ---- sample data ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def eval_dir(sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small offline A/B run on the session's sample KB (not ingested again)."""
    out = tmp_path_factory.mktemp("eval-out")
    settings = make_settings(sample_kb.settings.data_dir, variants_path=DEFAULT_VARIANTS_PATH)
    run_experiment(settings, VARIANTS, KNOWLEDGE / "eval" / "cases.jsonl", out, limit=12,
                   ragas=True, live=False, progress=False)
    assert (out / "rows.parquet").exists()
    return out


# ---- the notebooks ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


def test_ab_test_notebook_compares_variants_offline_and_live(seeded_dir: Path,
                                                             eval_dir: Path) -> None:
    nb = execute("ab_test_analysis.ipynb", seeded_dir, eval_dir)

    assert_clean_run(nb)
    text = printed(nb)
    assert "12 cases x 2 variants; control: control" in text
    for noun, verb in (("resolution", "resolves"), ("correct handling", "handles correctly"),
                       ("escalation", "escalates"), ("the CSAT proxy", "moves the CSAT proxy")):
        assert re.search(rf"^- (no detectable difference in {noun} at |concise_empathetic "
                         rf"{verb} )", text, re.M), noun
    live = text.split("Live verdicts", 1)[1]
    for noun, verb in (("resolution", "resolves"), ("escalation", "escalates"),
                       ("CSAT", "moves CSAT")):
        assert re.search(rf"^- (no detectable difference in {noun} at |concise_empathetic "
                         rf"{verb} )", live, re.M), noun
    # bars with CIs, segments, recall@k, confusion matrix, CSAT/latency, offline vs live
    assert figures(nb) >= 6


def test_ab_test_notebook_says_when_the_store_lacks_live_data(eval_dir: Path,
                                                              tmp_path: Path) -> None:
    nb = execute("ab_test_analysis.ipynb", tmp_path / "empty-store", eval_dir)

    assert_clean_run(nb)
    assert "no live data for both variants yet" in printed(nb)


def test_support_analytics_notebook_reads_the_store_and_the_history(seeded_dir: Path,
                                                                    tmp_path: Path) -> None:
    nb = execute("support_analytics.ipynb", seeded_dir, tmp_path / "no-eval-run")

    assert_clean_run(nb)
    text = printed(nb)
    n = len(load_conversations([HISTORY]))
    assert f"{n} conversations in the store" in text
    assert f"{n} past conversations" in text
    # volume, resolution trend, reasons, channel mix, CSAT, first response, 3 on the history
    assert figures(nb) >= 9


def test_support_analytics_notebook_on_an_empty_store_shows_the_history(tmp_path: Path) -> None:
    nb = execute("support_analytics.ipynb", tmp_path / "empty-store", tmp_path / "no-eval-run")

    assert_clean_run(nb)
    assert "the store has no conversations yet" in printed(nb)
    assert figures(nb) == 3  # the historical record only
