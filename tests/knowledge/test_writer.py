"""``IndexWriter``: the write, switch-over, delete, recovery and locking rules, on real parts."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from app.errors import IndexStoreError
from app.knowledge.base import KnowledgeBase
from app.knowledge.index import ChromaIndex
from app.knowledge.lexical import LexicalIndex
from app.knowledge.manifest import ChunkRecord, DocRecord
from app.knowledge.retriever import HybridRetriever, Mode
from app.knowledge.writer import DocumentWrite

DESCALE = "Boil equal parts white vinegar and water in the kettle, then rinse it twice."
CITRIC = "Dissolve citric acid powder in warm water, boil it in the kettle, then rinse."
FILTER = "Lift the mesh filter out of the spout and soak it in warm soapy water."
WARRANTY = "Every kettle carries a two year warranty against defects in workmanship."
PAIRING = "Hold the smart lamp near the router while it blinks amber, then pick your network."


def version(doc_id: str, *texts: str, title: str = "Kettle care") -> DocumentWrite:
    """A document as the pipeline hands it over: record plus content-addressed chunks."""
    digest = hashlib.sha256("|".join(texts).encode()).hexdigest()
    record = DocRecord("articles", doc_id, digest, "", title,
                       f"https://help.example.test/{doc_id}", {"category": "appliances"})
    chunks = [ChunkRecord(f"{doc_id}::{hashlib.sha256(t.encode()).hexdigest()[:12]}",
                          "articles", doc_id, i, "", t, f"{title}\n{t}")
              for i, t in enumerate(texts)]
    return DocumentWrite(record, chunks)


def ids(doc: DocumentWrite) -> list[str]:
    return [c.chunk_id for c in doc.chunks]


def manifest_ids(kb: KnowledgeBase) -> set[str]:
    return {c.chunk_id for c in kb.manifest.chunks("articles")}


def chroma_ids(kb: KnowledgeBase) -> set[str]:
    return set(kb.index.all_ids("articles"))


class CrashAfterUpsert(ChromaIndex):
    """The real index; the process dies right after the vectors reach Chroma."""

    def upsert(self, collection: str, ids: list[str], embeddings: np.ndarray,
               metadatas: list[dict[str, Any]], documents: list[str] | None = None) -> None:
        super().upsert(collection, ids, embeddings, metadatas, documents)
        raise RuntimeError("simulated crash after the upsert")


class CrashOnDelete(ChromaIndex):
    """The real index; the process dies when asked to delete, noting what was journaled."""

    def __init__(self, *args: Any, kb: Callable[[], KnowledgeBase], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kb = kb
        self.journal_at_delete: dict[str, list[str]] = {}

    def delete(self, collection: str, ids: list[str]) -> None:
        self.journal_at_delete = self.kb().manifest.pending()
        raise RuntimeError("simulated crash before the delete")


@pytest.fixture
def kb(make_kb: Callable[..., KnowledgeBase]) -> KnowledgeBase:
    return make_kb()


def test_write_makes_documents_live_everywhere_and_embeds_only_new_chunks(
    kb: KnowledgeBase,
    read_chroma: Callable[[KnowledgeBase, str], dict[str, tuple[str, dict[str, Any]]]],
) -> None:
    kettle = version("kettle-care", DESCALE, FILTER, WARRANTY)
    lamp = version("lamp", PAIRING, title="Lamp")
    with kb.writer() as writer:
        assert writer.recovered == 0
        stats = writer.write("articles", [kettle, lamp])
    assert (stats.added, stats.updated, stats.chunks_embedded) == (2, 0, 4)
    assert stats.tokens_embedded > stats.chunks_embedded
    assert manifest_ids(kb) == chroma_ids(kb) == set(ids(kettle)) | set(ids(lamp))
    text, meta = read_chroma(kb, "articles")[ids(kettle)[1]]
    assert text == FILTER
    assert meta == {"doc_id": "kettle-care", "collection": "articles", "title": "Kettle care",
                    "url": "https://help.example.test/kettle-care", "chunk": 1,
                    "category": "appliances"}
    saved = LexicalIndex.load(kb.settings.bm25_dir / "articles")
    assert saved is not None and saved.generation == kb.manifest.generation("articles")
    assert set(saved.chunk_ids) == manifest_ids(kb)

    edited = version("kettle-care", CITRIC, FILTER, WARRANTY)
    with kb.writer() as writer:
        stats = writer.write("articles", [edited])
    assert (stats.added, stats.updated, stats.chunks_embedded) == (0, 1, 1)
    assert kb.manifest.chunk_ids("articles", "kettle-care") == ids(edited)
    assert ids(kettle)[0] not in chroma_ids(kb)
    assert manifest_ids(kb) == chroma_ids(kb) == set(kb.lexical("articles").chunk_ids)
    assert kb.manifest.pending() == {}


def test_duplicate_texts_are_embedded_once_and_share_the_vector(kb: KnowledgeBase) -> None:
    a = version("a", DESCALE, FILTER)
    b = version("b", DESCALE)  # same title and text: a's first embed text, under another id
    with kb.writer() as writer:
        stats = writer.write("articles", [a, b])
    assert stats.chunks_embedded == 2
    vectors = kb.manifest.vectors("articles")
    assert vectors[ids(a)[0]] == vectors[ids(b)[0]]


def test_chroma_failure_before_the_switch_keeps_the_old_version_serving(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase],
) -> None:
    old = version("kettle-care", DESCALE, FILTER)
    with kb.writer() as writer:
        writer.write("articles", [old])
    generation = kb.manifest.generation("articles")

    new = version("kettle-care", CITRIC, FILTER)
    crashing = make_kb(index=CrashAfterUpsert(path=kb.settings.chroma_dir))
    with pytest.raises(RuntimeError, match="simulated crash"), crashing.writer() as writer:
        writer.write("articles", [new])

    # The manifest never switched; the new vector is an orphan the journal remembers.
    assert kb.manifest.chunk_ids("articles", "kettle-care") == ids(old)
    assert kb.manifest.generation("articles") == generation
    orphan = ids(new)[0]
    assert chroma_ids(kb) == set(ids(old)) | {orphan}
    # Both the new id and the old one it replaces are journaled; only the orphan is dead.
    assert sorted(kb.manifest.pending()["articles"]) == sorted([orphan, ids(old)[0]])
    saved = LexicalIndex.load(kb.settings.bm25_dir / "articles")
    assert saved is not None and set(saved.chunk_ids) == set(ids(old))

    reader = make_kb()
    modes: tuple[Mode, ...] = ("dense", "hybrid")
    for mode in modes:
        hits = HybridRetriever(reader).search("citric acid powder", k=5, mode=mode)
        assert hits and all(h.chunk_id in ids(old) for h in hits)

    assert make_kb().writer().recover() == 1
    assert kb.manifest.pending() == {}
    assert chroma_ids(kb) == manifest_ids(kb) == set(ids(old))


def test_a_crash_after_the_switch_leaves_only_old_chunks_to_clean_up(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase],
) -> None:
    old = version("kettle-care", DESCALE, FILTER)
    with kb.writer() as writer:
        writer.write("articles", [old])
    new = version("kettle-care", CITRIC, FILTER)
    crashing = make_kb(index=CrashOnDelete(path=kb.settings.chroma_dir, kb=lambda: kb))
    with pytest.raises(RuntimeError, match="simulated crash"), crashing.writer() as writer:
        writer.write("articles", [new])

    assert kb.manifest.chunk_ids("articles", "kettle-care") == ids(new)  # switched
    assert sorted(kb.manifest.pending()["articles"]) == sorted([ids(new)[0], ids(old)[0]])
    with kb.writer() as writer:  # a session recovers as it opens: the live new id stays
        assert writer.recovered == 1
    assert chroma_ids(kb) == manifest_ids(kb) == set(ids(new))


def test_delete_journals_the_chunks_before_removing_them(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase],
) -> None:
    kettle, lamp = version("kettle-care", DESCALE, FILTER), version("lamp", PAIRING)
    with kb.writer() as writer:
        writer.write("articles", [kettle, lamp])
    index = CrashOnDelete(path=kb.settings.chroma_dir, kb=lambda: kb)
    crashing = make_kb(index=index)
    with pytest.raises(RuntimeError, match="simulated crash"), crashing.writer() as writer:
        writer.delete("articles", ["kettle-care"])

    assert sorted(index.journal_at_delete["articles"]) == sorted(ids(kettle))
    assert manifest_ids(kb) == set(ids(lamp))  # gone from the manifest: never served
    assert chroma_ids(kb) == set(ids(kettle)) | set(ids(lamp))
    assert kb.recover_if_idle() == 2
    assert chroma_ids(kb) == set(ids(lamp))

    with kb.writer() as writer:
        stats = writer.delete("articles", ["lamp"])
    assert stats.deleted == 1
    assert chroma_ids(kb) == manifest_ids(kb) == set()
    assert kb.lexical("articles").chunk_ids == []


def test_one_writer_at_a_time_and_recovery_only_under_the_lock(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase],
) -> None:
    other = make_kb()
    with kb.writer():
        with pytest.raises(IndexStoreError, match="another ingest"), other.writer():
            pass
        # The running writer journals and upserts; the lock keeps others off its fresh vectors.
        kb.manifest.journal("articles", ["fresh::1"])
        kb.index.upsert("articles", ["fresh::1"], kb.embedder.embed_documents([DESCALE]),
                        [{"doc_id": "fresh"}])
        assert other.recover_if_idle() == 0
        with pytest.raises(IndexStoreError, match="another ingest"):
            other.writer().recover()
        assert chroma_ids(kb) == {"fresh::1"}
        assert other.manifest.pending() == {"articles": ["fresh::1"]}
    # Had it died there, whoever comes next cleans up.
    assert other.recover_if_idle() == 1
    assert chroma_ids(kb) == set()
    assert other.manifest.pending() == {}


def test_writes_need_an_open_session_and_the_right_collection(kb: KnowledgeBase) -> None:
    writer = kb.writer()
    with pytest.raises(RuntimeError, match="open the writer"):
        writer.write("articles", [version("a", DESCALE)])
    with pytest.raises(RuntimeError, match="open the writer"):
        writer.delete("articles", ["a"])
    with writer, pytest.raises(ValueError, match="not in collection"):
        writer.write("conversations", [version("a", DESCALE)])
    assert kb.manifest.counts() == {}


def test_bm25_is_saved_by_the_lock_holder_only(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase],
) -> None:
    with pytest.raises(KeyError), kb.writer() as writer:  # committed, then the session fails
        writer.write("articles", [version("kettle-care", DESCALE)])
        raise KeyError("after the commit")
    assert LexicalIndex.load(kb.settings.bm25_dir / "articles") is None

    reader = make_kb()
    with kb.writer():  # someone writes: a reader rebuilds in memory, leaves the files alone
        assert len(reader.lexical("articles").chunk_ids) == 1
        assert LexicalIndex.load(kb.settings.bm25_dir / "articles") is None
    fresh = make_kb()
    assert len(fresh.lexical("articles").chunk_ids) == 1  # idle now: the reader saves it
    saved = LexicalIndex.load(kb.settings.bm25_dir / "articles")
    assert saved is not None and saved.generation == kb.manifest.generation("articles")
