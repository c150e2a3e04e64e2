"""Ingestion: load → normalise → scrub (conversations) → chunk → embed → write, incrementally.

Exactness rules:
- a document whose content hash matches the manifest is skipped before anything else (the model
  is not even loaded when nothing changed);
- a changed document's new chunks are written before its old ones go, and the manifest commit
  in between is the switch-over, so a query never sees half a document;
- chunk ids are content-derived, so an edit re-embeds only the passages that changed;
- Chroma writes are journaled: ids written but not committed (or committed away but not yet
  deleted) are cleaned up by ``KnowledgeBase.recover`` on the next run;
- documents that vanished from a re-ingested source are deleted (prune), except those from a
  file that failed to load this time, which stay as they were.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import IndexStoreError, SourceError
from app.knowledge import COLLECTIONS
from app.knowledge.base import KnowledgeBase
from app.knowledge.manifest import ChunkRecord, DocRecord, Manifest
from pipelines.chunking import Chunk, ChunkConfig, chunk_document, tokenizer_counter
from pipelines.documents import SourceDocument
from pipelines.loaders import FieldMap, load_file, walk_with_errors
from pipelines.scrub import scrub_pii

KNOWLEDGE_DIRS = {"articles": "articles", "conversations": "conversations"}
RESOLVED = {"resolved", "closed", "solved"}
COMMIT_CHUNKS = 512  # chunks embedded and committed per step (bounds memory and lost work)


@dataclass
class IngestReport:
    """What one ingest run did. ``failed`` counts records/files that could not be ingested."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    chunks_embedded: int = 0
    tokens_embedded: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    recovered: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "deleted": self.deleted, "skipped": self.skipped,
            "chunks_embedded": self.chunks_embedded, "tokens_embedded": self.tokens_embedded,
            "failed": self.failed, "seconds": round(self.seconds, 3), "errors": self.errors,
        }

    def fail(self, error: SourceError) -> None:
        self.failed += 1
        self.errors.append({"source": error.source, "line": error.line, "error": error.reason})


@dataclass(frozen=True)
class Target:
    """One source path and the collection its documents go to."""

    path: Path
    collection: str
    prune: bool


@dataclass
class _Pending:
    doc: SourceDocument
    hash: str
    chunks: list[Chunk]
    is_new: bool


def plan_targets(paths: Iterable[Path], collection: str | None, prune: bool | None) -> list[Target]:
    """Map CLI paths to (path, collection) targets.

    A knowledge root (a directory with ``articles/`` or ``conversations/`` inside) ingests just
    those; eval sets and config files beside them are not documents. ``prune`` defaults to on
    for directories and off for single files.
    """
    targets: list[Target] = []
    for path in paths:
        if not path.exists():
            raise SourceError(str(path), "no such file or directory")
        do_prune = path.is_dir() if prune is None else prune
        subdirs = {c: path / d for c, d in KNOWLEDGE_DIRS.items() if (path / d).is_dir()}
        if path.is_dir() and subdirs and collection is None:
            targets += [Target(p, c, do_prune) for c, p in subdirs.items()]
        else:
            targets.append(Target(path, collection or "articles", do_prune))
    return targets


def _prepare_conversation(doc: SourceDocument) -> SourceDocument | None:
    """Resolved conversations only, PII scrubbed, titled by the customer's first words."""
    status = str(doc.metadata.get("status", "resolved")).lower()
    if status not in RESOLVED:
        return None
    text = scrub_pii(doc.text, order_numbers=True)
    title = doc.title if doc.title != doc.id else ""
    if not title:
        title = _summary_line(text) or doc.id
    meta = dict(doc.metadata)
    return SourceDocument(id=doc.id, text=text, title=scrub_pii(title, order_numbers=True),
                          url=doc.url,
                          source=doc.source, line=doc.line, fmt="text", metadata=meta)


_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening)|dear [^,!\n]{1,40}[,!]|"
    r"to whom it may concern)(?: there| team| all)?\s*[,!.:\-—]*\s*|(?:so|um|ok|okay)\b,?\s*)+",
    re.I)


def _summary_line(text: str) -> str:
    """The customer's first real sentence (greetings skipped), at most ~90 characters."""
    for line in text.splitlines():
        if not line.startswith("Customer:"):
            continue
        for sentence in re.split(r"(?<=[.!?])\s+|\n", line.split(":", 1)[1].strip()):
            sentence = _GREETING.sub("", " ".join(sentence.split())).strip()
            if len(sentence.split()) >= 3:
                sentence = sentence[0].upper() + sentence[1:]
                return sentence if len(sentence) <= 90 else \
                    sentence[:87].rsplit(" ", 1)[0] + "…"
    return ""


class Ingester:
    """Runs ingestion into a ``KnowledgeBase``.

    Args:
        kb: the knowledge base to write to.
        chunking: chunk size/overlap (defaults from settings).
        progress: show a progress bar (``None``: only on a terminal).
    """

    def __init__(self, kb: KnowledgeBase, chunking: ChunkConfig | None = None,
                 progress: bool | None = None) -> None:
        self.kb = kb
        s = kb.settings
        self.chunking = chunking or ChunkConfig(s.chunk_tokens, s.chunk_overlap)
        self.progress = progress
        self._count: Callable[[str], int] | None = None
        self._salt: str | None = None

    def _fingerprint(self) -> str:
        """What the index depends on beyond the documents: the model and chunk settings."""
        if self._salt is None:
            model = Path(self.kb.model_path())
            config = (model / "config.json").read_bytes() if (model / "config.json").exists() \
                else b""
            raw = f"{model.name}|{self.chunking.chunk_tokens}|{self.chunking.overlap}|".encode()
            self._salt = hashlib.sha256(raw + config).hexdigest()[:12]
            self.chunking = ChunkConfig(self.chunking.chunk_tokens, self.chunking.overlap,
                                        self._salt)
        return self._salt

    def _hash(self, doc: SourceDocument) -> str:
        return hashlib.sha256(f"{self._fingerprint()}:{doc.content_hash()}".encode()).hexdigest()

    def _counter(self) -> Callable[[str], int]:
        if self._count is None:
            self._count = tokenizer_counter(self.kb.model_path())
        return self._count

    def run(self, paths: Iterable[Path], collection: str | None = None,
            fields: FieldMap = FieldMap(), prune: bool | None = None) -> IngestReport:
        """Ingest files/directories (one writer at a time per data directory)."""
        with self._exclusive():
            return self._run(paths, collection, fields, prune)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        with self.kb.writer() as mine:
            if not mine:
                raise IndexStoreError(
                    f"another ingest is writing to {self.kb.settings.data_dir} (lock file "
                    "ingest.lock); wait for it to finish, then run this again")
            yield

    def _run(self, paths: Iterable[Path], collection: str | None, fields: FieldMap,
             prune: bool | None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        if collection is not None and collection not in COLLECTIONS:
            raise SourceError(
                collection, f"unknown collection (use one of {', '.join(COLLECTIONS)})")
        targets = plan_targets(list(paths), collection, prune)
        report.recovered = self.kb.recover() if self.kb.manifest.pending() else 0
        changed: set[str] = set()
        for target in targets:
            if self._ingest_target(target, fields, report):
                changed.add(target.collection)
        for coll in sorted(changed):
            self.kb.rebuild_lexical(coll)
        report.seconds = time.perf_counter() - started
        return report

    def add_documents(self, docs: list[SourceDocument], collection: str = "articles"
                      ) -> IngestReport:
        """Index documents given in code (no source file, nothing pruned)."""
        with self._exclusive():
            return self._add_documents(docs, collection)

    def _add_documents(self, docs: list[SourceDocument], collection: str) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        if self.kb.manifest.pending():
            report.recovered = self.kb.recover()
        known = self.kb.manifest.documents(collection)
        pending: list[_Pending] = []
        for doc in docs:
            if collection == "conversations":
                prepared = _prepare_conversation(doc)
                if prepared is None:
                    report.skipped += 1
                    continue
                doc = prepared
            digest = self._hash(doc)
            old = known.get((collection, doc.id))
            if old is not None and old.hash == digest:
                report.unchanged += 1
                continue
            pending.append(_Pending(doc, digest, chunk_document(doc, self._counter(),
                                                                self.chunking), old is None))
        self._write(collection, pending, report)
        if pending:
            self.kb.rebuild_lexical(collection)
        report.seconds = time.perf_counter() - started
        return report

    # ---- one target ------------------------------------------------------------------
    def _ingest_target(self, target: Target, fields: FieldMap, report: IngestReport) -> bool:
        manifest = self.kb.manifest
        known = manifest.documents(target.collection)
        seen: dict[str, str] = {}
        failed_files: set[str] = set()
        pending: list[_Pending] = []
        files, unreadable = walk_with_errors(target.path)
        for where, reason in unreadable:
            report.fail(SourceError(where, f"cannot read directory: {reason}; its documents "
                                           "are kept as they were"))
            failed_files.add(str(Path(where).resolve()))
        for file in files:
            for item in load_file(file, fields):
                if isinstance(item, SourceError):
                    report.fail(item)
                    failed_files.add(str(file.resolve()))  # compared with resolved sources
                    continue
                doc: SourceDocument = item
                if target.collection == "conversations":
                    prepared = _prepare_conversation(item)
                    if prepared is None:
                        report.skipped += 1
                        continue
                    doc = prepared
                if doc.id in seen:
                    report.fail(SourceError(
                        doc.source, f"duplicate id '{doc.id}' (first seen in {seen[doc.id]}); "
                        "ids must be unique within a collection", doc.line))
                    continue
                seen[doc.id] = f"{doc.source}:{doc.line}" if doc.line else doc.source
                digest = self._hash(doc)
                old = known.get((target.collection, doc.id))
                if old is not None and old.hash == digest:
                    report.unchanged += 1
                    source = str(Path(doc.source).resolve())
                    if old.source != source:  # the file moved: remember where it lives now
                        manifest.set_source(target.collection, doc.id, source)
                    continue
                chunks = chunk_document(doc, self._counter(), self.chunking)
                pending.append(_Pending(doc, digest, chunks, old is None))
        self._write(target.collection, pending, report)
        gone = self._vanished(target, known, seen, failed_files)
        self._delete(target.collection, gone, report)
        return bool(pending or gone)

    def _vanished(self, target: Target, known: dict[tuple[str, str], DocRecord],
                  seen: dict[str, str], failed_files: set[str]) -> list[str]:
        if not target.prune:
            return []
        root = target.path.resolve()
        gone = []
        for (_, doc_id), rec in known.items():
            if doc_id in seen or not rec.source or rec.source in failed_files:
                continue  # added from code (no source), or its file failed to load
            if any(rec.source.startswith(d + "/") for d in failed_files):
                continue  # under a directory that could not be read
            src = Path(rec.source).resolve()
            if src == root or root in src.parents:
                gone.append(doc_id)
        return gone

    # ---- writing ---------------------------------------------------------------------
    def _write(self, collection: str, pending: list[_Pending], report: IngestReport) -> None:
        if not pending:
            return
        manifest = self.kb.manifest
        live_by_doc = {p.doc.id: manifest.chunk_ids(collection, p.doc.id) for p in pending}
        total = sum(len({c.id for c in p.chunks} - set(live_by_doc[p.doc.id])) for p in pending)
        bar = _progress(total, self.progress, f"embedding {collection}")
        try:
            for group in _groups(pending, COMMIT_CHUNKS):
                self._write_group(collection, group, live_by_doc, report, bar)
        finally:
            bar.close()

    def _write_group(self, collection: str, group: list[_Pending],
                     live_by_doc: dict[str, list[str]], report: IngestReport, bar: Any) -> None:
        kb, manifest = self.kb, self.kb.manifest
        to_embed: list[Chunk] = []
        removed: list[str] = []
        for p in group:
            old = set(live_by_doc[p.doc.id])
            new_ids = {c.id for c in p.chunks}
            to_embed += [c for c in p.chunks if c.id not in old]
            removed += [cid for cid in live_by_doc[p.doc.id] if cid not in new_ids]
        manifest.journal(collection, [c.id for c in to_embed] + removed)
        blobs: dict[str, bytes] = {}
        if to_embed:
            vectors = self._embed_unique([c.embed_text for c in to_embed], report)
            blobs = {c.id: v.astype("float32").tobytes()
                     for c, v in zip(to_embed, vectors, strict=True)}
            docs = {p.doc.id: p.doc for p in group}
            kb.index.upsert(
                collection, [c.id for c in to_embed], vectors,
                [_chroma_meta(collection, docs[c.doc_id], c) for c in to_embed],
                [c.text for c in to_embed],
            )
            bar.update(len(to_embed))
        now = time.time()
        with manifest.transaction() as tx:
            for p in group:
                doc = p.doc
                Manifest.put_document(
                    tx,
                    DocRecord(collection, doc.id, p.hash,
                              str(Path(doc.source).resolve()) if doc.source else "",
                              doc.title, doc.url, {**doc.metadata, "line": doc.line}),
                    [ChunkRecord(c.id, collection, c.doc_id, c.index, c.section, c.text,
                                 c.embed_text) for c in p.chunks],
                    now, blobs,
                )
            Manifest.bump_generation(tx, collection)
        if removed:
            kb.index.delete(collection, removed)
        manifest.clear_journal(collection)
        for p in group:
            if p.is_new:
                report.added += 1
            else:
                report.updated += 1

    def _embed_unique(self, texts: list[str], report: IngestReport) -> np.ndarray:
        """Embed each distinct text once; duplicates share the vector."""
        position: dict[str, int] = {}
        unique: list[str] = []
        for t in texts:
            if t not in position:
                position[t] = len(unique)
                unique.append(t)
        embedder = self.kb.embedder
        before = embedder.stats.tokens
        vectors = embedder.embed_documents(unique)
        report.chunks_embedded += len(unique)
        report.tokens_embedded += embedder.stats.tokens - before
        return vectors[[position[t] for t in texts]]

    def _delete(self, collection: str, doc_ids: list[str], report: IngestReport) -> None:
        if not doc_ids:
            return
        manifest = self.kb.manifest
        ids = [cid for d in doc_ids for cid in manifest.chunk_ids(collection, d)]
        manifest.journal(collection, ids)
        with manifest.transaction() as tx:
            for d in doc_ids:
                Manifest.delete_document(tx, collection, d)
            Manifest.bump_generation(tx, collection)
        if ids:
            self.kb.index.delete(collection, ids)
        manifest.clear_journal(collection)
        report.deleted += len(doc_ids)


def _chroma_meta(collection: str, doc: SourceDocument, chunk: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {"doc_id": doc.id, "collection": collection, "title": doc.title,
                            "url": doc.url, "chunk": chunk.index}
    for key in ("category", "locale", "channel"):
        if doc.metadata.get(key):
            meta[key] = str(doc.metadata[key])
    return meta


def _groups(pending: list[_Pending], limit: int) -> Iterable[list[_Pending]]:
    group: list[_Pending] = []
    size = 0
    for p in pending:
        if group and size + len(p.chunks) > limit:
            yield group
            group, size = [], 0
        group.append(p)
        size += len(p.chunks)
    if group:
        yield group


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=None if enabled is None
                else not enabled, leave=False)
