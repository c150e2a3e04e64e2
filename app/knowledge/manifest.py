"""The ingest manifest: which documents and chunks are live, by content hash.

A SQLite file beside the index. It is the source of truth for what is indexed: the retriever
reads chunk texts and metadata from here, BM25 is rebuilt from here, and Chroma is kept in step
through a small journal (ids written to Chroma but not yet committed here, or committed away but
not yet deleted from Chroma) that ``pending`` returns for recovery after an interrupted run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL, doc_id TEXT NOT NULL, hash TEXT NOT NULL, source TEXT NOT NULL,
    title TEXT NOT NULL, url TEXT NOT NULL, metadata TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, collection TEXT NOT NULL, doc_id TEXT NOT NULL,
    idx INTEGER NOT NULL, section TEXT NOT NULL, text TEXT NOT NULL, embed_text TEXT NOT NULL,
    vector BLOB
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (collection, doc_id);
CREATE TABLE IF NOT EXISTS journal (chunk_id TEXT NOT NULL, collection TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class DocRecord:
    """A live document as the manifest knows it."""

    collection: str
    doc_id: str
    hash: str
    source: str
    title: str
    url: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ChunkRecord:
    """A live chunk with the fields retrieval needs."""

    chunk_id: str
    collection: str
    doc_id: str
    idx: int
    section: str
    text: str
    embed_text: str


class Manifest:
    """SQLite-backed manifest. Thread-safe for the single-writer, many-reader use we make of it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        columns = {r[1] for r in self._conn.execute("PRAGMA table_info(chunks)")}
        if "vector" not in columns:  # manifests written before vectors were kept here
            self._conn.execute("ALTER TABLE chunks ADD COLUMN vector BLOB")
        self._lock = threading.RLock()
        # generation key → (the files' stamp, when read, value): see ``generation``
        self._generations: dict[str, tuple[tuple[object, ...], float, int]] = {}

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: everything inside commits together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            self._generations.clear()

    # ---- reads -------------------------------------------------------------------------
    def documents(self, collection: str | None = None) -> dict[tuple[str, str], DocRecord]:
        sql = "SELECT collection, doc_id, hash, source, title, url, metadata FROM documents"
        args: tuple[Any, ...] = ()
        if collection:
            sql += " WHERE collection = ?"
            args = (collection,)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return {(r[0], r[1]): DocRecord(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
                for r in rows}

    def chunk_ids(self, collection: str, doc_id: str) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT chunk_id FROM chunks WHERE collection = ? AND doc_id = ? ORDER BY idx",
                (collection, doc_id),
            ).fetchall()
        return [r[0] for r in rows]

    def chunks(self, collection: str) -> list[ChunkRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT chunk_id, collection, doc_id, idx, section, text, embed_text FROM chunks"
                " WHERE collection = ? ORDER BY doc_id, idx",
                (collection,),
            ).fetchall()
        return [ChunkRecord(*r) for r in rows]

    def live_ids(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        live: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                live.update(r[0] for r in self._conn.execute(
                    f"SELECT chunk_id FROM chunks WHERE chunk_id IN ({marks})", part))
        return live

    def live_documents(self, collection: str, doc_ids: Iterable[str]) -> set[str]:
        """Those of ``doc_ids`` the collection holds."""
        ids = list(doc_ids)
        live: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                live.update(r[0] for r in self._conn.execute(
                    f"SELECT doc_id FROM documents WHERE collection = ? AND doc_id IN ({marks})",
                    (collection, *part)))
        return live

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            docs = self._conn.execute(
                "SELECT collection, COUNT(*) FROM documents GROUP BY collection").fetchall()
            chunks = self._conn.execute(
                "SELECT collection, COUNT(*) FROM chunks GROUP BY collection").fetchall()
        out: dict[str, dict[str, int]] = {}
        for coll, n in docs:
            out.setdefault(coll, {"documents": 0, "chunks": 0})["documents"] = n
        for coll, n in chunks:
            out.setdefault(coll, {"documents": 0, "chunks": 0})["chunks"] = n
        return out

    def generation(self, collection: str | None = None) -> int:
        """A counter bumped on every committed change of a collection (or of any, with no
        collection); derived indexes (BM25, the retriever's catalog) compare against it."""
        key = f"generation:{collection}" if collection else "generation"
        # Read on every search, from many threads: answered from memory while neither the
        # database nor its WAL file has changed (a commit by any process changes one of them)
        # and for at most a second, so a change is never missed for longer than that.
        stamp, now = self._stamp(), time.monotonic()
        cached = self._generations.get(key)
        if cached is not None and cached[0] == stamp and now - cached[1] < 1.0:
            return cached[2]
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        value = int(row[0]) if row else 0
        self._generations[key] = (stamp, now, value)
        return value

    def _stamp(self) -> tuple[object, ...]:
        out: list[object] = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                st = os.stat(path)
            except OSError:
                out.append(None)
                continue
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def vectors(self, collection: str) -> dict[str, bytes]:
        """The stored float32 vectors of a collection's live chunks, by chunk id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT chunk_id, vector FROM chunks WHERE collection = ? AND vector IS NOT NULL",
                (collection,)).fetchall()
        return {cid: blob for cid, blob in rows}

    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as tx:
            tx.execute("INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = excluded.value", (key, value))

    def pending(self) -> dict[str, list[str]]:
        """Journaled chunk ids per collection (left behind by an interrupted run)."""
        with self._lock:
            rows = self._conn.execute("SELECT collection, chunk_id FROM journal").fetchall()
        out: dict[str, list[str]] = {}
        for coll, cid in rows:
            out.setdefault(coll, []).append(cid)
        return out

    # ---- writes ------------------------------------------------------------------------
    def journal(self, collection: str, chunk_ids: Iterable[str]) -> None:
        with self.transaction() as tx:
            tx.executemany("INSERT INTO journal (chunk_id, collection) VALUES (?, ?)",
                           [(cid, collection) for cid in chunk_ids])

    def clear_journal(self, collection: str | None = None) -> None:
        with self.transaction() as tx:
            if collection is None:
                tx.execute("DELETE FROM journal")
            else:
                tx.execute("DELETE FROM journal WHERE collection = ?", (collection,))

    def set_source(self, collection: str, doc_id: str, source: str) -> None:
        """Record that an unchanged document now comes from another file."""
        with self.transaction() as tx:
            tx.execute("UPDATE documents SET source = ? WHERE collection = ? AND doc_id = ?",
                       (source, collection, doc_id))

    @staticmethod
    def bump_generation(tx: sqlite3.Connection, collection: str) -> None:
        for key in ("generation", f"generation:{collection}"):
            tx.execute("INSERT INTO state (key, value) VALUES (?, '1') ON CONFLICT(key)"
                       " DO UPDATE SET value = CAST(value AS INTEGER) + 1", (key,))

    @staticmethod
    def put_document(tx: sqlite3.Connection, doc: DocRecord, chunks: list[ChunkRecord],
                     now: float, vectors: dict[str, bytes] | None = None) -> None:
        """Make ``chunks`` the document's live chunks. ``vectors`` holds the new chunks'
        vectors; a chunk that was already live keeps its stored vector."""
        keep = [c.chunk_id for c in chunks]
        marks = ",".join("?" * len(keep)) or "''"
        tx.execute(f"DELETE FROM chunks WHERE collection = ? AND doc_id = ? AND chunk_id NOT IN "
                   f"({marks})", (doc.collection, doc.doc_id, *keep))
        tx.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (doc.collection, doc.doc_id, doc.hash, doc.source, doc.title, doc.url,
             json.dumps(doc.metadata, ensure_ascii=False, default=str), now),
        )
        tx.executemany(
            "INSERT INTO chunks (chunk_id, collection, doc_id, idx, section, text, embed_text,"
            " vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(chunk_id) DO UPDATE SET"
            " collection = excluded.collection, doc_id = excluded.doc_id, idx = excluded.idx,"
            " section = excluded.section, text = excluded.text,"
            " embed_text = excluded.embed_text,"
            " vector = COALESCE(excluded.vector, chunks.vector)",
            [(c.chunk_id, c.collection, c.doc_id, c.idx, c.section, c.text, c.embed_text,
              (vectors or {}).get(c.chunk_id)) for c in chunks],
        )

    @staticmethod
    def delete_document(tx: sqlite3.Connection, collection: str, doc_id: str) -> None:
        tx.execute("DELETE FROM chunks WHERE collection = ? AND doc_id = ?", (collection, doc_id))
        tx.execute("DELETE FROM documents WHERE collection = ? AND doc_id = ?",
                   (collection, doc_id))
