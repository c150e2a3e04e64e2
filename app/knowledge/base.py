"""``KnowledgeBase``: the manifest, the Chroma index, BM25 and the embedder, opened together.

Everything is opened lazily, so an ingest that finds nothing changed never loads the model,
and a search never opens more than it needs. Construct it in one place (CLI, app factory,
eval runner) and pass it down.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from app.knowledge import COLLECTIONS
from app.knowledge.embedder import Embedder, get_embedder
from app.knowledge.index import ChromaIndex
from app.knowledge.lexical import LexicalIndex
from app.knowledge.manifest import Manifest

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
    def embedder_loaded(self) -> bool:
        return isinstance(self._embedder, Embedder)

    @property
    def index(self) -> ChromaIndex:
        with self._lock:
            if self._index is None:
                self._index = ChromaIndex.from_settings(self.settings)
            return self._index

    def model_path(self) -> str:
        from app.knowledge.embedder import resolve_model_path

        return str(resolve_model_path(self.settings.embedding_model))

    # ---- lexical ---------------------------------------------------------------------
    def lexical(self, collection: str) -> LexicalIndex:
        """The BM25 index for a collection, rebuilt if it is older than the manifest.

        A reader rebuilds in memory; the saved copy is rewritten only by the process holding
        the writer lock, so readers never race each other (or an ingest) on the files."""
        generation = self.manifest.generation(collection)
        with self._lock:
            current = self._lexical.get(collection)
            if current is not None and current.generation == generation:
                return current
            loaded = LexicalIndex.load(self.settings.bm25_dir / collection)
            if loaded is None or loaded.generation != generation:
                loaded = self._build_lexical(collection, generation)
                with self.writer() as mine:
                    if mine:
                        loaded.save(self.settings.bm25_dir / collection)
            self._lexical[collection] = loaded
            return loaded

    def _build_lexical(self, collection: str, generation: int) -> LexicalIndex:
        chunks = self.manifest.chunks(collection)
        return LexicalIndex.build([c.chunk_id for c in chunks],
                                  [c.embed_text for c in chunks], generation)

    def rebuild_lexical(self, collection: str) -> LexicalIndex:
        """Rebuild and save a collection's BM25 index (call it holding ``writer()``)."""
        built = self._build_lexical(collection, self.manifest.generation(collection))
        built.save(self.settings.bm25_dir / collection)
        with self._lock:
            self._lexical[collection] = built
        return built

    # ---- consistency -----------------------------------------------------------------
    @contextmanager
    def writer(self) -> Iterator[bool]:
        """Try to become the one writer of this data directory (an exclusive lock file).

        Yields whether the lock was taken. Ingest requires it; recovery runs only under it, so
        a process starting while an ingest runs never deletes that ingest's fresh vectors. The
        lock is local to this machine: with a shared Chroma server, run ingests from one host.
        """
        path = self.settings.data_dir / "ingest.lock"
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def recover_if_idle(self) -> int:
        """``recover`` unless an ingest is running right now (then it cleans up itself)."""
        with self.writer() as mine:
            return self.recover() if mine else 0

    def recover(self) -> int:
        """Undo what an interrupted ingest left in Chroma; returns how many vectors went.

        Call it only while holding ``writer()`` (``recover_if_idle`` does)."""
        pending = self.manifest.pending()
        removed = 0
        for collection, ids in pending.items():
            live = self.manifest.live_ids(ids)
            dead = [cid for cid in ids if cid not in live]
            if dead:
                self.index.delete(collection, dead)
                removed += len(dead)
        if pending:
            self.manifest.clear_journal()
        return removed

    def stats(self) -> dict[str, object]:
        counts = self.manifest.counts()
        return {
            "data_dir": str(self.settings.data_dir),
            "chroma": self.settings.chroma_host or str(self.settings.chroma_dir),
            "collections": {c: counts.get(c, {"documents": 0, "chunks": 0}) for c in COLLECTIONS},
            "generation": self.manifest.generation(),
        }
