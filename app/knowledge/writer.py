"""``IndexWriter``: the one way documents get into, and out of, the index.

Consistency rules (every index write goes through here, so these hold everywhere):

1. One writer per data directory: a write session holds the ``ingest.lock`` file lock from start
   to end, and recovery runs only under it, so a process starting during an ingest never deletes
   that ingest's fresh vectors. The lock is per machine: with a shared Chroma server, write from
   one host.
2. Journal first: every chunk id about to be upserted to Chroma, or deleted from it, is written
   to the manifest's journal before Chroma is touched.
3. New before old: a changed document's new chunks are upserted to Chroma before the manifest
   transaction that switches to them (documents, chunks, their vectors and the collection's
   generation commit together); its old chunks leave Chroma only after that commit. Readers go
   by the manifest, so they see the old version or the new one, never a mix.
4. Only chunk ids the document does not already have are embedded (ids are content-derived), and
   each distinct text once.
5. Writes commit in groups of at most ``COMMIT_CHUNKS`` chunks: a crash loses one group at most.
6. ``recover()`` deletes from Chroma the journaled ids the manifest does not hold, then clears
   the journal. A session recovers when it opens; a server recovers at start if no one writes.
7. BM25 files are written only under the lock: rebuilt and saved when a session that changed a
   collection closes normally; a reader that finds them stale rebuilds in memory and saves only
   if it can take the lock.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from app.errors import IndexStoreError
from app.knowledge.lexical import LexicalIndex
from app.knowledge.manifest import ChunkRecord, DocRecord, Manifest

if TYPE_CHECKING:
    from app.knowledge.base import KnowledgeBase

COMMIT_CHUNKS = 512  # chunks embedded and committed per step (bounds memory and lost work)
LOCK_FILE = "ingest.lock"


@dataclass(frozen=True)
class DocumentWrite:
    """A document's next version: its manifest record and all its chunks, in order."""

    record: DocRecord
    chunks: list[ChunkRecord]


@dataclass
class WriteStats:
    """What one ``write`` or ``delete`` did."""

    added: int = 0
    updated: int = 0
    deleted: int = 0
    chunks_embedded: int = 0
    tokens_embedded: int = 0


class IndexWriter:
    """Writes documents to Chroma, the manifest and BM25 of one ``KnowledgeBase``.

    ``write``/``delete`` run inside a session (``with``), which holds the writer lock,
    recovers first and rebuilds BM25 of the collections it changed when it closes.

    Args:
        kb: the knowledge base to write to.
        progress: show an embedding progress bar (``None``: only on a terminal).

    Example:
        >>> with kb.writer() as writer:
        ...     stats = writer.write("articles", [DocumentWrite(record, chunks)])
    """

    def __init__(self, kb: KnowledgeBase, progress: bool | None = False) -> None:
        self.kb = kb
        self.progress = progress
        self.recovered = 0  # vectors the session's opening recovery removed
        self._handle: IO[str] | None = None  # the lock file, while a session is open
        self._changed: set[str] = set()

    # ---- session -------------------------------------------------------------------------
    def __enter__(self) -> IndexWriter:
        if self._handle is not None:
            raise RuntimeError("this IndexWriter is already open")
        handle = self._try_lock()
        if handle is None:
            raise IndexStoreError(
                f"another ingest is writing to {self.kb.settings.data_dir} (lock file "
                f"{LOCK_FILE}); wait for it to finish, then run this again")
        self._handle, self._changed = handle, set()
        try:
            self.recovered = self._recover()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:  # after a failure readers rebuild BM25 in memory instead
                for collection in sorted(self._changed):
                    built = build_lexical(self.kb.manifest, collection)
                    built.save(self.kb.settings.bm25_dir / collection)
                    self.kb.cache_lexical(collection, built)
        finally:
            self._release()

    def _try_lock(self) -> IO[str] | None:
        handle = open(self.kb.settings.data_dir / LOCK_FILE, "a+")  # noqa: SIM115 (kept open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    @contextmanager
    def _locked(self) -> Iterator[bool]:
        """Hold the lock for a moment (already held inside a session); yields whether held."""
        if self._handle is not None:
            yield True
            return
        handle = self._try_lock()
        if handle is None:
            yield False
            return
        self._handle = handle
        try:
            yield True
        finally:
            self._release()

    def _require_open(self) -> None:
        if self._handle is None:
            raise RuntimeError("open the writer first: `with kb.writer() as writer: ...`")

    # ---- recovery ------------------------------------------------------------------------
    def recover(self) -> int:
        """Undo what an interrupted write left in Chroma; returns how many vectors went.

        Holds the lock for the call (a session already does); ``IndexStoreError`` if another
        process holds it."""
        with self._locked() as mine:
            if not mine:
                raise IndexStoreError(f"another ingest is writing to {self.kb.settings.data_dir}"
                                      f" (lock file {LOCK_FILE}); it recovers by itself")
            return self._recover()

    def recover_if_idle(self) -> int:
        """``recover`` unless another process is writing right now (it cleans up itself)."""
        with self._locked() as mine:
            return self._recover() if mine else 0

    def _recover(self) -> int:
        manifest = self.kb.manifest
        pending = manifest.pending()
        removed = 0
        for collection, ids in pending.items():
            live = manifest.live_ids(ids)
            dead = [cid for cid in ids if cid not in live]
            if dead:
                self.kb.index.delete(collection, dead)
                removed += len(dead)
        if pending:
            manifest.clear_journal()
        return removed

    # ---- writes --------------------------------------------------------------------------
    def write(self, collection: str, docs: Sequence[DocumentWrite]) -> WriteStats:
        """Make each document's given chunks its live version (new or changed documents)."""
        self._require_open()
        stats = WriteStats()
        if not docs:
            return stats
        wrong = [d.record.doc_id for d in docs if d.record.collection != collection]
        if wrong:
            raise ValueError(f"documents {wrong} are not in collection {collection!r}")
        manifest = self.kb.manifest
        live = {d.record.doc_id: manifest.chunk_ids(collection, d.record.doc_id) for d in docs}
        known = manifest.live_documents(collection, live)
        total = sum(len({c.chunk_id for c in d.chunks} - set(live[d.record.doc_id]))
                    for d in docs)
        self._changed.add(collection)
        bar = _progress(total, self.progress, f"embedding {collection}")
        try:
            for group in _groups(docs, COMMIT_CHUNKS):
                self._write_group(collection, group, live, stats, bar)
        finally:
            bar.close()
        for d in docs:
            if d.record.doc_id in known:
                stats.updated += 1
            else:
                stats.added += 1
        return stats

    def _write_group(self, collection: str, group: list[DocumentWrite],
                     live: dict[str, list[str]], stats: WriteStats, bar: Any) -> None:
        manifest, index = self.kb.manifest, self.kb.index
        to_embed: list[tuple[DocRecord, ChunkRecord]] = []
        removed: list[str] = []
        for d in group:
            old = set(live[d.record.doc_id])
            new_ids = {c.chunk_id for c in d.chunks}
            to_embed += [(d.record, c) for c in d.chunks if c.chunk_id not in old]
            removed += [cid for cid in live[d.record.doc_id] if cid not in new_ids]
        manifest.journal(collection, [c.chunk_id for _, c in to_embed] + removed)
        blobs: dict[str, bytes] = {}
        if to_embed:
            vectors = self._embed_unique([c.embed_text for _, c in to_embed], stats)
            blobs = {c.chunk_id: v.astype("float32").tobytes()
                     for (_, c), v in zip(to_embed, vectors, strict=True)}
            index.upsert(collection, [c.chunk_id for _, c in to_embed], vectors,
                         [_chroma_meta(doc, c) for doc, c in to_embed],
                         [c.text for _, c in to_embed])
            bar.update(len(to_embed))
        now = time.time()
        with manifest.transaction() as tx:  # the switch-over
            for d in group:
                Manifest.put_document(tx, d.record, d.chunks, now, blobs)
            Manifest.bump_generation(tx, collection)
        if removed:
            index.delete(collection, removed)
        manifest.clear_journal(collection)

    def _embed_unique(self, texts: list[str], stats: WriteStats) -> np.ndarray:
        """Embed each distinct text once; duplicates share the vector."""
        position: dict[str, int] = {}
        unique: list[str] = []
        for t in texts:
            if t not in position:
                position[t] = len(unique)
                unique.append(t)
        embedder = self.kb.embedder  # loaded only now: a write with nothing new never loads it
        before = embedder.stats.tokens
        vectors = embedder.embed_documents(unique)
        stats.chunks_embedded += len(unique)
        stats.tokens_embedded += embedder.stats.tokens - before
        return vectors[[position[t] for t in texts]]

    def delete(self, collection: str, doc_ids: Sequence[str]) -> WriteStats:
        """Remove documents and all their chunks."""
        self._require_open()
        stats = WriteStats()
        if not doc_ids:
            return stats
        manifest = self.kb.manifest
        ids = [cid for d in doc_ids for cid in manifest.chunk_ids(collection, d)]
        manifest.journal(collection, ids)
        self._changed.add(collection)
        with manifest.transaction() as tx:
            for d in doc_ids:
                Manifest.delete_document(tx, collection, d)
            Manifest.bump_generation(tx, collection)
        if ids:
            self.kb.index.delete(collection, ids)
        manifest.clear_journal(collection)
        stats.deleted = len(doc_ids)
        return stats

    def set_source(self, collection: str, doc_id: str, source: str) -> None:
        """Record that an unchanged document now comes from another file."""
        self._require_open()
        self.kb.manifest.set_source(collection, doc_id, source)

    # ---- BM25 ----------------------------------------------------------------------------
    def lexical(self, collection: str) -> LexicalIndex:
        """The collection's BM25 index as the manifest stands: the saved one if current, else
        one rebuilt in memory and saved only if the lock is free (so readers never race each
        other, or a writer, on the files)."""
        directory = self.kb.settings.bm25_dir / collection
        loaded = LexicalIndex.load(directory)
        if loaded is not None and loaded.generation == self.kb.manifest.generation(collection):
            return loaded
        built = build_lexical(self.kb.manifest, collection)
        with self._locked() as mine:
            if mine:
                built.save(directory)
        return built


def build_lexical(manifest: Manifest, collection: str) -> LexicalIndex:
    """A BM25 index of the collection's live chunks, labelled with its generation."""
    # Generation read first: a commit racing us makes the label stale (rebuilt later), not new.
    generation = manifest.generation(collection)
    chunks = manifest.chunks(collection)
    return LexicalIndex.build([c.chunk_id for c in chunks], [c.embed_text for c in chunks],
                              generation)


def _chroma_meta(doc: DocRecord, chunk: ChunkRecord) -> dict[str, Any]:
    meta: dict[str, Any] = {"doc_id": doc.doc_id, "collection": doc.collection,
                            "title": doc.title, "url": doc.url, "chunk": chunk.idx}
    for key in ("category", "locale", "channel"):
        if doc.metadata.get(key):
            meta[key] = str(doc.metadata[key])
    return meta


def _groups(docs: Iterable[DocumentWrite], limit: int) -> Iterator[list[DocumentWrite]]:
    group: list[DocumentWrite] = []
    size = 0
    for d in docs:
        if group and size + len(d.chunks) > limit:
            yield group
            group, size = [], 0
        group.append(d)
        size += len(d.chunks)
    if group:
        yield group


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=None if enabled is None
                else not enabled, leave=False)
