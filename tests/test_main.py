"""The app factory's startup, and how it coexists with an ingest running in another process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder
from app.knowledge.index import ChromaIndex
from app.main import create_app
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
