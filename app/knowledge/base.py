"""``KnowledgeBase``: the manifest, the Chroma index, BM25 and the embedder, opened together.

Everything is opened lazily, so an ingest that finds nothing changed never loads the model,
and a search never opens more than it needs. Construct it in one place (CLI, app factory,
eval runner) and pass it down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.knowledge import COLLECTIONS
from app.knowledge.embedder import Embedder, get_embedder
from app.knowledge.index import ChromaIndex
from app.knowledge.lexical import LexicalIndex
from app.knowledge.manifest import Manifest
from app.knowledge.writer import IndexWriter

if TYPE_CHECKING:
    from app.config import Settings


class KnowledgeBase:
    """The knowledge core's components for one data directory.

    Args:
        settings: where the data lives and which model/Chroma to use.
        embedder: an embedder to use instead of the configured one (tests, benchmarks).
        index: a Chroma index to use instead of the configured one.

    Example:
        >>> kb = KnowledgeBase(Settings(data_dir=Path("/tmp/kb")))
        >>> kb.manifest.counts()
        {}
    """

    def __init__(
        self, settings: Settings, embedder: Embedder | Callable[[], Embedder] | None = None,
        index: ChromaIndex | None = None,
    ) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = Manifest(settings.manifest_path)
        self._embedder = embedder
        self._query_embedder: Embedder | None = None
        self._index = index
        self._lexical: dict[str, LexicalIndex] = {}
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = get_embedder(self.settings)
            elif not isinstance(self._embedder, Embedder):
                self._embedder = self._embedder()
            return self._embedder

    @property
    def query_embedder(self) -> Embedder:
        """What embeds questions on the answer path: the ONNX graph exported from the same
        weights when a current export exists (no torch import, ~0.2 s to load), else the
        document embedder. An embedder passed in (tests, benchmarks) is used for both."""
        with self._lock:
            if self._query_embedder is None:
                if self._embedder is not None:
                    self._query_embedder = self.embedder
                else:
                    from app.knowledge.onnx_embedder import get_query_embedder

                    self._query_embedder = get_query_embedder(self.settings)
            return self._query_embedder

    @property
    def embedder_loaded(self) -> bool:
        return isinstance(self._embedder, Embedder) or self._query_embedder is not None

    @property
    def index(self) -> ChromaIndex:
        with self._lock:
            if self._index is None:
                self._index = ChromaIndex.from_settings(self.settings)
            return self._index

    def model_path(self) -> str:
        from app.knowledge.embedder import resolve_model_path

        return str(resolve_model_path(self.settings.embedding_model))

    # ---- BM25 and writing (the rules live in ``app.knowledge.writer``) ---------------------
    def lexical(self, collection: str, generation: int | None = None) -> LexicalIndex:
        """The BM25 index for a collection, reloaded when the manifest has moved on (see
        ``IndexWriter.lexical``: only the lock holder saves it). A caller that has just read
        the collection's generation passes it (one manifest read per search, not two)."""
        if generation is None:
            generation = self.manifest.generation(collection)
        with self._lock:
            current = self._lexical.get(collection)
            if current is None or current.generation != generation:
                current = self._lexical[collection] = self.writer().lexical(collection)
            return current

    def cache_lexical(self, collection: str, index: LexicalIndex) -> None:
        """Keep a BM25 index a writer has just rebuilt (saves reloading it from disk)."""
        with self._lock:
            self._lexical[collection] = index

    def writer(self, progress: bool | None = False) -> IndexWriter:
        """The writer of this data directory; write inside ``with kb.writer() as w:``."""
        return IndexWriter(self, progress)

    def recover_if_idle(self) -> int:
        """Undo an interrupted ingest unless one is running now (``IndexWriter``)."""
        return self.writer().recover_if_idle()

    def stats(self) -> dict[str, object]:
        counts = self.manifest.counts()
        return {
            "data_dir": str(self.settings.data_dir),
            "chroma": self.settings.chroma_host or str(self.settings.chroma_dir),
            "collections": {c: counts.get(c, {"documents": 0, "chunks": 0}) for c in COLLECTIONS},
            "generation": self.manifest.generation(),
        }
