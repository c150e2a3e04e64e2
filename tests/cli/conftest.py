"""The ``supportbot`` command line, in-process through typer's CliRunner: where each command's
settings point."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.config import get_settings
from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder
from app.responder.variants import DEFAULT_VARIANTS_PATH


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder: Embedder) -> Iterator[Path]:
    """SUPPORTBOT_DATA_DIR in tmp; cwd in tmp (no stray .env); the session model is reused."""
    data = tmp_path / "data"
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(data))
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield data
    get_settings.cache_clear()


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
