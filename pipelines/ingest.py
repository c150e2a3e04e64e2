"""Ingestion: load → normalise → scrub (conversations) → chunk, then hand over to the writer.

Exactness rules on this side (writing is ``app.knowledge.writer.IndexWriter``'s, with its
journal, switch-over and recovery rules):
- a document whose content hash matches the manifest is skipped before anything else (the model
  is not even loaded when nothing changed);
- the embedding model and chunk settings are folded into every hash and chunk id, and chunk ids
  are content-derived, so an edit re-embeds only the passages that changed;
- documents that vanished from a re-ingested source are deleted (prune), except those from a
  file that failed to load this time, which stay as they were.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import SourceError
from app.knowledge import COLLECTIONS
from app.knowledge.base import KnowledgeBase
from app.knowledge.manifest import ChunkRecord, DocRecord
from app.knowledge.writer import DocumentWrite, IndexWriter, WriteStats
from pipelines.chunking import ChunkConfig, chunk_document, tokenizer_counter
from pipelines.documents import SourceDocument
from pipelines.loaders import FieldMap, load_file, walk_with_errors
from pipelines.scrub import scrub_pii

KNOWLEDGE_DIRS = {"articles": "articles", "conversations": "conversations"}
RESOLVED = {"resolved", "closed", "solved"}


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

    def absorb(self, stats: WriteStats) -> None:
        """Count what the index writer did."""
        self.added += stats.added
        self.updated += stats.updated
        self.deleted += stats.deleted
        self.chunks_embedded += stats.chunks_embedded
        self.tokens_embedded += stats.tokens_embedded


@dataclass(frozen=True)
class Target:
    """One source path and the collection its documents go to."""

    path: Path
    collection: str
    prune: bool


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
        started = time.perf_counter()
        report = IngestReport()
        if collection is not None and collection not in COLLECTIONS:
            raise SourceError(
                collection, f"unknown collection (use one of {', '.join(COLLECTIONS)})")
        targets = plan_targets(list(paths), collection, prune)
        with self.kb.writer(self.progress) as writer:
            report.recovered = writer.recovered
            for target in targets:
                self._ingest_target(writer, target, fields, report)
        report.seconds = time.perf_counter() - started
        return report

    def add_documents(self, docs: list[SourceDocument], collection: str = "articles"
                      ) -> IngestReport:
        """Index documents given in code (no source file, nothing pruned)."""
        started = time.perf_counter()
        report = IngestReport()
        with self.kb.writer(self.progress) as writer:
            report.recovered = writer.recovered
            known = self.kb.manifest.documents(collection)
            changed = self._to_write(writer, docs, collection, known, report)
            report.absorb(writer.write(collection, changed))
        report.seconds = time.perf_counter() - started
        return report

    # ---- one target ------------------------------------------------------------------
    def _ingest_target(self, writer: IndexWriter, target: Target, fields: FieldMap,
                       report: IngestReport) -> None:
        known = self.kb.manifest.documents(target.collection)
        seen: dict[str, str] = {}
        failed_files: set[str] = set()
        files, unreadable = walk_with_errors(target.path)
        for where, reason in unreadable:
            report.fail(SourceError(where, f"cannot read directory: {reason}; its documents "
                                           "are kept as they were"))
            failed_files.add(str(Path(where).resolve()))

        def loaded() -> Iterator[SourceDocument]:
            for file in files:
                for item in load_file(file, fields):
                    if isinstance(item, SourceError):
                        report.fail(item)
                        failed_files.add(str(file.resolve()))  # compared with resolved sources
                        continue
                    yield item

        changed = self._to_write(writer, loaded(), target.collection, known, report, seen)
        report.absorb(writer.write(target.collection, changed))
        gone = self._vanished(target, known, seen, failed_files)
        report.absorb(writer.delete(target.collection, gone))

    def _to_write(self, writer: IndexWriter, docs: Iterable[SourceDocument], collection: str,
                 known: dict[tuple[str, str], DocRecord], report: IngestReport,
                 seen: dict[str, str] | None = None) -> list[DocumentWrite]:
        """The documents to write, chunked; skipped and unchanged ones are only counted.

        With ``seen`` (an ingest of files), a repeated id is reported, and an unchanged document
        whose file moved gets its new source recorded."""
        out: list[DocumentWrite] = []
        for doc in docs:
            if collection == "conversations":
                prepared = _prepare_conversation(doc)
                if prepared is None:
                    report.skipped += 1
                    continue
                doc = prepared
            if seen is not None:
                if doc.id in seen:
                    report.fail(SourceError(
                        doc.source, f"duplicate id '{doc.id}' (first seen in {seen[doc.id]}); "
                        "ids must be unique within a collection", doc.line))
                    continue
                seen[doc.id] = f"{doc.source}:{doc.line}" if doc.line else doc.source
            digest = self._hash(doc)
            old = known.get((collection, doc.id))
            if old is not None and old.hash == digest:
                report.unchanged += 1
                if seen is not None and old.source != _source(doc):
                    writer.set_source(collection, doc.id, _source(doc))  # the file moved
                continue
            out.append(self._version(collection, doc, digest))
        return out

    def _version(self, collection: str, doc: SourceDocument, digest: str) -> DocumentWrite:
        """The document chunked, as the writer takes it."""
        chunks = chunk_document(doc, self._counter(), self.chunking)
        record = DocRecord(collection, doc.id, digest, _source(doc), doc.title, doc.url,
                           {**doc.metadata, "line": doc.line})
        return DocumentWrite(record, [
            ChunkRecord(c.id, collection, c.doc_id, c.index, c.section, c.text, c.embed_text)
            for c in chunks])

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


def _source(doc: SourceDocument) -> str:
    """Where the manifest says a document lives: its resolved file, or "" (added from code)."""
    return str(Path(doc.source).resolve()) if doc.source else ""
