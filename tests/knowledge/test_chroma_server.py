"""The client/server Chroma path: a real ``chroma run`` server on a free local port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.errors import ConfigError, IndexStoreError
from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder
from app.knowledge.index import ChromaIndex
from app.knowledge.retriever import HybridRetriever
from pipelines.ingest import Ingester

CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_heartbeat(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    url = f"http://127.0.0.1:{port}/api/v2/heartbeat"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"chroma server did not answer {url} within {timeout}s")


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[int]:
    assert CHROMA.exists(), f"no chroma executable next to {sys.executable}"
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_heartbeat(port, proc)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.mark.slow
def test_ingest_and_search_through_a_chroma_server(
    chroma_server: int, embedder: Embedder, make_settings: Callable[..., object],
    tmp_path: Path, small_corpus: Path, small_corpus_ids: set[str],
) -> None:
    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1",
                             chroma_port=chroma_server)
    kb = KnowledgeBase(settings, embedder=embedder)  # type: ignore[arg-type]
    report = Ingester(kb, progress=False).run([small_corpus])
    assert (report.added, report.failed) == (len(small_corpus_ids), 0)
    assert kb.index.location == f"http://127.0.0.1:{chroma_server}"
    assert not (tmp_path / "data" / "chroma").exists()  # nothing went to an embedded store

    manifest_ids = {c.chunk_id for c in kb.manifest.chunks("articles")}
    assert set(kb.index.all_ids("articles")) == manifest_ids
    hits = HybridRetriever(kb).search("remove limescale with vinegar", k=3, mode="dense")
    assert hits[0].article_id == "kettle-care"

    # Another KnowledgeBase (another process would do the same) sees the server's vectors.
    second = KnowledgeBase(make_settings(tmp_path / "data", chroma_host="127.0.0.1",  # type: ignore[arg-type]
                                         chroma_port=chroma_server), embedder=embedder)
    assert second.index is not kb.index
    assert second.index.count("articles") == len(manifest_ids)
    assert set(second.index.all_ids("articles")) == manifest_ids
    hits = HybridRetriever(second).search("pair the lamp on a 2.4 GHz network", k=3)
    assert hits[0].article_id == "lamp-pairing"

    # A re-run through the server is incremental too.
    again = Ingester(second, progress=False).run([small_corpus])
    assert (again.unchanged, again.chunks_embedded) == (len(small_corpus_ids), 0)


def test_path_and_host_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        ChromaIndex(path=tmp_path / "chroma", host="127.0.0.1")
    with pytest.raises(ConfigError, match="exactly one"):
        ChromaIndex()


def test_unreachable_server_is_an_index_store_error() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(IndexStoreError, match=f"127.0.0.1:{port}"):
        ChromaIndex(host="127.0.0.1", port=port)
