"""Review findings on ingest safety: config changes re-embed, nothing is pruned by accident,
and a reader sees an ingest made by another process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from pipelines.documents import SourceDocument
from pipelines.ingest import Ingester, IngestReport
from pipelines.loaders import walk_with_errors
from tests.conftest import markdown_article


def ingest(kb: KnowledgeBase, *paths: Path, **kwargs: Any) -> IngestReport:
    return Ingester(kb, progress=False).run(list(paths), **kwargs)


def test_changing_chunk_settings_rechunks_and_reembeds_everything(
        make_kb: Callable[..., KnowledgeBase], small_corpus: Path) -> None:
    kb = make_kb()
    first = ingest(kb, small_corpus)
    smaller = make_kb(data_dir=kb.settings.data_dir, chunk_tokens=64, chunk_overlap=8)
    again = ingest(smaller, small_corpus)
    assert again.unchanged == 0
    assert again.updated == first.added
    assert again.chunks_embedded > 0
    chunks = smaller.manifest.chunks("articles")
    assert len(chunks) > first.chunks_embedded  # smaller chunks: more of them
    assert set(smaller.index.all_ids("articles")) == {c.chunk_id for c in chunks}


def test_documents_added_from_code_survive_a_pruning_ingest_of_the_cwd(
        make_kb: Callable[..., KnowledgeBase], small_corpus: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    kb = make_kb()
    Ingester(kb, progress=False).add_documents(
        [SourceDocument(id="gift-wrap", text="Gift wrapping costs $4.99 per item.")])
    monkeypatch.chdir(small_corpus)
    report = ingest(kb, Path("."))
    assert report.deleted == 0
    assert "gift-wrap" in {d for _, d in kb.manifest.documents("articles")}


def test_an_unreadable_directory_is_reported_and_its_documents_kept(
        make_kb: Callable[..., KnowledgeBase], small_corpus: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    kb = make_kb()
    ingest(kb, small_corpus)
    guides = str(small_corpus / "guides")
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:  # the OS refusing one directory (EACCES)
        if str(path) == guides:
            raise PermissionError(13, "Permission denied", guides)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    _, failed = walk_with_errors(small_corpus)
    assert [f for f, _ in failed] == [guides]
    report = ingest(kb, small_corpus)
    assert report.failed == 1 and report.deleted == 0
    assert "cannot read directory" in report.errors[0]["error"]
    assert "kettle-care" in {d for _, d in kb.manifest.documents("articles")}


def test_a_reader_sees_what_another_process_ingested(
        make_kb: Callable[..., KnowledgeBase], tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "kettle.md").write_text(markdown_article(
        "kettle-care", "Kettle care", {"Descaling": "Boil vinegar and water to descale."}),
        encoding="utf-8")
    kb = make_kb()
    ingest(kb, corpus)
    retriever = HybridRetriever(kb)
    assert [r.article_id for r in retriever.search("descale the kettle", 3)] == ["kettle-care"]
    (corpus / "lamp.md").write_text(markdown_article(
        "lamp-pairing", "Pair your smart lamp",
        {"Pairing": "Hold the lamp near the router while it blinks amber, then pick your "
                    "2.4 GHz network in the Lumen app."}), encoding="utf-8")
    exe = Path(sys.executable).with_name("supportbot")
    done = subprocess.run([str(exe), "ingest", str(corpus), "--json"], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "SUPPORTBOT_DATA_DIR": str(kb.settings.data_dir)})
    assert done.returncode == 0, done.stderr
    hits = retriever.search("my lamp blinks amber and won't pair", 3)
    assert hits and hits[0].article_id == "lamp-pairing"
