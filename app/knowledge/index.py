"""Chroma adapter: the dense half of the index, embedded or client/server.

We always pass our own embeddings; Chroma's default embedding function (which downloads a
model) is never used. Queries carry no ``where`` filter: it made top-k queries ~18x slower
here, so filtering happens on the candidates instead (see ``retriever``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.errors import ConfigError, IndexStoreError
from app.knowledge import chroma_name

if TYPE_CHECKING:
    from app.config import Settings


class ChromaIndex:
    """Vectors for our collections in one Chroma database.

    Args:
        path: directory of an embedded (``PersistentClient``) store.
        host: a Chroma server to use instead (``HttpClient``); not together with ``path``.
        port: the server's port.
        client: a ready client (tests, or callers with their own settings).

    Example:
        >>> index = ChromaIndex(path=Path(".data/chroma"))
        >>> index.upsert("articles", ["a::1"], np.zeros((1, 384), "float32"), [{"doc_id": "a"}])
    """

    def __init__(
        self, path: Path | None = None, host: str | None = None, port: int = 8000,
        client: Any | None = None,
    ) -> None:
        import chromadb

        if sum(x is not None for x in (path, host, client)) != 1:
            raise ConfigError(
                "give exactly one of a Chroma data path (embedded), CHROMA_HOST (server) or a "
                "client; unset CHROMA_HOST to use the embedded store"
            )
        settings = chromadb.Settings(anonymized_telemetry=False)
        try:
            if client is not None:
                self.client = client
            elif host is not None:
                self.client = chromadb.HttpClient(host=host, port=port, settings=settings)
            else:
                assert path is not None
                path.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as e:  # chromadb raises plain exceptions for connection failures
            where = f"{host}:{port}" if host else str(path)
            raise IndexStoreError(
                f"cannot open the Chroma store at {where}: {e}. Check CHROMA_HOST/CHROMA_PORT "
                "or that the data directory is writable"
            ) from e
        self.location = f"http://{host}:{port}" if host else str(path)
        self._collections: dict[str, Any] = {}
        self.max_batch = int(self.client.get_max_batch_size())

    @classmethod
    def from_settings(cls, settings: Settings) -> ChromaIndex:
        if settings.chroma_host:
            return cls(host=settings.chroma_host, port=settings.chroma_port)
        return cls(path=settings.chroma_dir)

    def _collection(self, collection: str) -> Any:
        if collection not in self._collections:
            self._collections[collection] = self.client.get_or_create_collection(
                chroma_name(collection),
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collections[collection]

    def upsert(
        self, collection: str, ids: list[str], embeddings: np.ndarray,
        metadatas: list[dict[str, Any]], documents: list[str] | None = None,
    ) -> None:
        """Write vectors in as few round trips as Chroma's batch limit allows."""
        col = self._collection(collection)
        for start in range(0, len(ids), self.max_batch):
            end = start + self.max_batch
            col.upsert(
                ids=ids[start:end], embeddings=embeddings[start:end],
                metadatas=metadatas[start:end],
                documents=documents[start:end] if documents is not None else None,
            )

    def delete(self, collection: str, ids: list[str]) -> None:
        col = self._collection(collection)
        for start in range(0, len(ids), self.max_batch):
            col.delete(ids=ids[start : start + self.max_batch])

    def query(self, collection: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity (1 - distance), best first."""
        col = self._collection(collection)
        total = col.count()
        if total == 0:
            return []
        res = col.query(query_embeddings=vector.reshape(1, -1), n_results=min(n, total),
                        include=["distances"])
        return [(cid, 1.0 - float(d)) for cid, d in zip(res["ids"][0], res["distances"][0],
                                                         strict=True)]

    def vectors(self, collection: str, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by chunk id (ids Chroma does not have are left out)."""
        out: dict[str, np.ndarray] = {}
        col = self._collection(collection)
        for start in range(0, len(ids), self.max_batch):
            res = col.get(ids=ids[start : start + self.max_batch], include=["embeddings"])
            out.update((cid, np.asarray(v, dtype=np.float32))
                       for cid, v in zip(res["ids"], res["embeddings"], strict=True))
        return out

    def count(self, collection: str) -> int:
        return int(self._collection(collection).count())

    def all_ids(self, collection: str) -> list[str]:
        return list(self._collection(collection).get(include=[])["ids"])
