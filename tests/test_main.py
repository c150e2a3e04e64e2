"""The app factory's startup, and how it coexists with an ingest running in another process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder
from app.knowledge.index import ChromaIndex
from app.main import create_app
from app.responder.variants import DEFAULT_VARIANTS_PATH
from app.store import Store
from pipelines.ingest import Ingester


def test_startup_loads_the_model_and_opens_the_catalogs(
    make_kb: Callable[..., KnowledgeBase], small_corpus: Path, embedder: Embedder,
) -> None:
    kb = make_kb()
    Ingester(kb, progress=False).run([small_corpus])
    reader = make_kb(embedder_=lambda: embedder)  # loaded lazily, like the configured model
    assert not reader.embedder_loaded
    with TestClient(create_app(reader.settings, kb=reader)) as client:
        assert reader.embedder_loaded
        assert client.get("/readyz").json()["status"] == "ready"
        hits = client.get("/api/v1/search", params={"q": "gift card balance", "k": 1}).json()
        assert hits["results"][0]["article_id"] == "gift-card-balance"


class ServerStartsMidIngest(ChromaIndex):
    """The ingest's real index; between its upsert and the manifest commit, the API starts."""

    def __init__(self, *args: Any, on_upsert: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_upsert = on_upsert

    def upsert(self, collection: str, ids: list[str], embeddings: np.ndarray,
               metadatas: list[dict[str, Any]], documents: list[str] | None = None) -> None:
        super().upsert(collection, ids, embeddings, metadatas, documents)
        self.on_upsert()


def test_api_starting_during_an_ingest_does_not_delete_its_vectors(
    make_kb: Callable[..., KnowledgeBase], small_corpus: Path,
) -> None:
    reader = make_kb()

    def start_api() -> None:
        with TestClient(create_app(reader.settings, kb=reader)) as client:
            assert client.get("/readyz").status_code == 200

    settings_kb = make_kb()
    writer = make_kb(index=ServerStartsMidIngest(path=settings_kb.settings.chroma_dir,
                                                 on_upsert=start_api))
    report = Ingester(writer, progress=False).run([small_corpus])
    assert report.failed == 0 and report.added > 0

    check = make_kb()
    manifest_ids = {c.chunk_id for c in check.manifest.chunks("articles")}
    assert manifest_ids
    assert set(check.index.all_ids("articles")) == manifest_ids


def test_the_same_app_can_be_started_twice(
        sample_kb: KnowledgeBase, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "twice", variants_path=DEFAULT_VARIANTS_PATH)
    store = Store.from_settings(settings)
    app = create_app(settings, kb=sample_kb, store=store)
    try:
        for _ in range(2):  # lifespan closes the query batcher; the next start revives it
            with TestClient(app) as client:
                r = client.post("/api/v1/answer",
                                json={"question": "how do I reset my password"})
                assert r.status_code == 200
                assert r.json()["citations"]
    finally:
        store.close()


def test_the_server_imports_nothing_from_the_evaluation_stack(tmp_path: Path) -> None:
    """The service's own install runs without the ``eval`` extra: building and starting the
    app pulls in neither ``eval/`` nor ragas, matplotlib or the notebook tools. (pandas and
    pyarrow are left out: sentence-transformers pulls them in when they are installed, and
    does without them on the core install.)"""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from app.config import Settings\n"
        "from app.main import create_app\n"
        f"settings = Settings(_env_file=None, data_dir={str(tmp_path / 'data')!r}, "
        f"variants_path={str(DEFAULT_VARIANTS_PATH)!r})\n"
        "with TestClient(create_app(settings)) as client:\n"
        "    assert client.get('/readyz').status_code == 200\n"
        "heavy = ('eval', 'ragas', 'matplotlib', 'nbclient', 'ipykernel', "
        "'langchain_community', 'instructor')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
