"""Ingestion end to end on small corpora: real model, embedded Chroma, bm25s and the manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.errors import SourceError
from app.knowledge.base import KnowledgeBase
from app.knowledge.index import ChromaIndex
from app.knowledge.retriever import HybridRetriever
from pipelines.ingest import Ingester, IngestReport

# Keep in step with tests/conftest.py: with chunk_tokens=96 every section of the synthetic
# articles is exactly one chunk, so "one section edited" means "one chunk re-embedded".
CHUNK_TOKENS = 96


def ingest(kb: KnowledgeBase, *paths: Path, **kwargs: Any) -> IngestReport:
    return Ingester(kb, progress=False).run(list(paths), **kwargs)


def model_must_not_load() -> Any:
    pytest.fail("the embedding model was loaded")


def assert_consistent(kb: KnowledgeBase, collection: str = "articles") -> set[str]:
    """Chroma, BM25 and the manifest hold exactly the same chunk ids; returns them."""
    manifest_ids = {c.chunk_id for c in kb.manifest.chunks(collection)}
    chroma_ids = kb.index.all_ids(collection)
    assert len(chroma_ids) == len(set(chroma_ids))
    assert set(chroma_ids) == manifest_ids
    assert kb.index.count(collection) == len(manifest_ids)
    assert set(kb.lexical(collection).chunk_ids) == manifest_ids
    return manifest_ids


def doc_ids(kb: KnowledgeBase, collection: str = "articles") -> set[str]:
    return {doc_id for _, doc_id in kb.manifest.documents(collection)}


@pytest.fixture
def kb(make_kb: Callable[..., KnowledgeBase]) -> KnowledgeBase:
    return make_kb(chunk_tokens=CHUNK_TOKENS)


def test_cold_ingest(kb: KnowledgeBase, small_corpus: Path, small_corpus_ids: set[str]) -> None:
    report = ingest(kb, small_corpus)
    assert (report.added, report.updated, report.unchanged, report.deleted, report.failed) == (
        len(small_corpus_ids), 0, 0, 0, 0)
    assert report.errors == []
    ids = assert_consistent(kb)
    assert report.chunks_embedded == len(ids) > 0
    assert report.tokens_embedded > report.chunks_embedded
    assert doc_ids(kb) == small_corpus_ids
    kettle = kb.manifest.chunk_ids("articles", "kettle-care")
    assert len(kettle) == 3  # one chunk per section (see CHUNK_TOKENS)
    doc = kb.manifest.documents("articles")[("articles", "kettle-care")]
    assert doc.title == "Kettle care"
    assert doc.url == "https://help.example.test/articles/kettle-care"
    assert doc.metadata["category"] == "troubleshooting"
    assert doc.source == str((small_corpus / "guides" / "kettle-care.md").resolve())
    summary = report.summary()
    for key in ("added", "updated", "unchanged", "deleted", "skipped", "chunks_embedded",
                "tokens_embedded", "failed", "seconds", "errors"):
        assert key in summary
    json.dumps(summary)


def test_ingested_articles_are_searchable(kb: KnowledgeBase, small_corpus: Path) -> None:
    ingest(kb, small_corpus)
    results = HybridRetriever(kb).search("how do I remove limescale with vinegar", k=3)
    assert results[0].article_id == "kettle-care"
    assert results[0].section == "Descaling"


def test_unchanged_rerun_does_nothing_and_never_loads_the_model(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase], small_corpus: Path,
    small_corpus_ids: set[str],
) -> None:
    ingest(kb, small_corpus)
    generation = kb.manifest.generation()
    before = assert_consistent(kb)

    fresh = make_kb(embedder_=model_must_not_load, chunk_tokens=CHUNK_TOKENS)
    report = ingest(fresh, small_corpus)
    assert (report.added, report.updated, report.deleted, report.chunks_embedded,
            report.tokens_embedded, report.failed) == (0, 0, 0, 0, 0, 0)
    assert report.unchanged == len(small_corpus_ids)
    assert not fresh.embedder_loaded
    assert fresh.manifest.generation() == generation
    assert assert_consistent(fresh) == before


def test_editing_one_section_re_embeds_only_that_section(
    kb: KnowledgeBase, small_corpus: Path, small_corpus_ids: set[str],
) -> None:
    ingest(kb, small_corpus)
    old = kb.manifest.chunk_ids("articles", "kettle-care")
    others = {d: kb.manifest.chunk_ids("articles", d) for d in small_corpus_ids - {"kettle-care"}}

    path = small_corpus / "guides" / "kettle-care.md"
    text = path.read_text(encoding="utf-8")
    assert text.count("equal parts white vinegar") == 1
    path.write_text(text.replace("equal parts white vinegar",
                                 "one part citric acid powder to ten parts"), encoding="utf-8")

    report = ingest(kb, small_corpus)
    assert (report.added, report.updated, report.deleted) == (0, 1, 0)
    assert report.unchanged == len(small_corpus_ids) - 1
    assert report.chunks_embedded == 1

    new = kb.manifest.chunk_ids("articles", "kettle-care")
    assert len(new) == 3
    assert new[1:] == old[1:]  # the untouched sections keep their ids
    assert new[0] != old[0]
    ids = assert_consistent(kb)
    assert old[0] not in ids
    assert {d: kb.manifest.chunk_ids("articles", d) for d in others} == others
    [chunk] = [c for c in kb.manifest.chunks("articles") if c.chunk_id == new[0]]
    assert chunk.section == "Descaling" and "citric acid" in chunk.text

    results = HybridRetriever(kb).search("descale the kettle with citric acid powder", k=1)
    assert results[0].chunk_id == new[0]


def test_deleted_file_is_pruned_everywhere(
    kb: KnowledgeBase, small_corpus: Path, small_corpus_ids: set[str],
) -> None:
    ingest(kb, small_corpus)
    lamp_ids = set(kb.manifest.chunk_ids("articles", "lamp-pairing"))
    assert lamp_ids
    query = "pair the smart lamp on a 2.4 GHz network"
    assert HybridRetriever(kb).search(query, k=1)[0].article_id == "lamp-pairing"

    (small_corpus / "lamp-pairing.md").unlink()
    report = ingest(kb, small_corpus)
    assert (report.deleted, report.added, report.updated, report.failed) == (1, 0, 0, 0)
    assert report.unchanged == len(small_corpus_ids) - 1
    assert report.chunks_embedded == 0
    assert doc_ids(kb) == small_corpus_ids - {"lamp-pairing"}
    ids = assert_consistent(kb)
    assert not ids & lamp_ids
    assert not set(kb.index.all_ids("articles")) & lamp_ids
    assert not set(kb.lexical("articles").chunk_ids) & lamp_ids
    for mode in ("hybrid", "dense", "lexical"):
        hits = HybridRetriever(kb).search(query, k=10, mode=mode)  # type: ignore[arg-type]
        assert "lamp-pairing" not in {r.article_id for r in hits}, mode


def test_no_prune_keeps_documents_of_deleted_files(
    kb: KnowledgeBase, small_corpus: Path, small_corpus_ids: set[str],
) -> None:
    ingest(kb, small_corpus)
    (small_corpus / "lamp-pairing.md").unlink()
    report = ingest(kb, small_corpus, prune=False)
    assert report.deleted == 0
    assert doc_ids(kb) == small_corpus_ids
    assert_consistent(kb)
    hits = HybridRetriever(kb).search("pair the smart lamp on a 2.4 GHz network", k=1)
    assert hits[0].article_id == "lamp-pairing"


def test_a_single_file_is_not_pruned_unless_asked(kb: KnowledgeBase, small_corpus: Path) -> None:
    path = small_corpus / "gift-cards.json"
    ingest(kb, path)
    records = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(records[:1]), encoding="utf-8")
    assert ingest(kb, path).deleted == 0
    assert doc_ids(kb) == {"gift-card-balance", "gift-card-lost"}
    report = ingest(kb, path, prune=True)
    assert (report.deleted, report.unchanged) == (1, 1)
    assert doc_ids(kb) == {"gift-card-balance"}
    assert_consistent(kb)


def test_pruning_is_limited_to_the_ingested_path(
    kb: KnowledgeBase, small_corpus: Path, tmp_path: Path,
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "elsewhere.md").write_text("# Elsewhere\n\nA document from another source.\n",
                                        encoding="utf-8")
    ingest(kb, small_corpus)
    ingest(kb, other)
    report = ingest(kb, small_corpus)  # 'elsewhere' is not under this path: it must stay
    assert report.deleted == 0
    assert "elsewhere" in doc_ids(kb)


def test_moving_an_unchanged_file_between_sources_does_not_lose_it(
    kb: KnowledgeBase, tmp_path: Path,
) -> None:
    drafts, published = tmp_path / "drafts", tmp_path / "published"
    drafts.mkdir()
    published.mkdir()
    article = "---\nid: store-credit\ntitle: Store credit\n---\nStore credit never expires.\n"
    (drafts / "store-credit.md").write_text(article, encoding="utf-8")
    ingest(kb, drafts)
    (drafts / "store-credit.md").rename(published / "store-credit.md")
    assert ingest(kb, published).unchanged == 1
    report = ingest(kb, drafts)  # drafts/ no longer holds it; published/ still does
    assert report.deleted == 0
    assert doc_ids(kb) == {"store-credit"}


def test_file_that_fails_to_load_keeps_its_indexed_documents(
    kb: KnowledgeBase, small_corpus: Path, small_corpus_ids: set[str],
) -> None:
    ingest(kb, small_corpus)
    before = assert_consistent(kb)
    bad = small_corpus / "gift-cards.json"
    bad.write_text('[{"id": "gift-card-balance", "text": "trunc', encoding="utf-8")
    report = ingest(kb, small_corpus)
    assert report.failed >= 1
    assert report.deleted == 0
    assert any(e["source"] == str(bad) for e in report.errors)
    assert doc_ids(kb) == small_corpus_ids
    assert assert_consistent(kb) == before


def test_failed_file_keeps_its_documents_when_the_path_is_relative(
    kb: KnowledgeBase, small_corpus: Path, small_corpus_ids: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(small_corpus.parent)
    relative = Path(small_corpus.name)
    ingest(kb, relative)
    (relative / "gift-cards.json").write_text('[{"id": "gift-card-balance", "text": "trunc',
                                              encoding="utf-8")
    report = ingest(kb, relative)
    assert report.failed >= 1
    assert report.deleted == 0
    assert doc_ids(kb) == small_corpus_ids


def test_duplicate_ids_across_files_are_reported(kb: KnowledgeBase, tmp_path: Path) -> None:
    root = tmp_path / "dups"
    root.mkdir()
    (root / "a.md").write_text("---\nid: shared-id\ntitle: First\n---\nFirst version.\n",
                               encoding="utf-8")
    (root / "b.jsonl").write_text(
        json.dumps({"id": "unique", "text": "Unique."}) + "\n"
        + json.dumps({"id": "shared-id", "title": "Second", "text": "Second version."}) + "\n",
        encoding="utf-8")
    report = ingest(kb, root)
    assert (report.added, report.failed) == (2, 1)
    [error] = report.errors
    assert error["source"] == str(root / "b.jsonl")
    assert error["line"] == 2
    assert "duplicate id 'shared-id'" in error["error"]
    assert str(root / "a.md") in error["error"]
    assert doc_ids(kb) == {"shared-id", "unique"}
    assert kb.manifest.documents("articles")[("articles", "shared-id")].title == "First"
    assert_consistent(kb)


class CrashingIndex(ChromaIndex):
    """The real Chroma index, which dies right after its n-th upsert (a killed ingest)."""

    def __init__(self, *args: Any, crash_on: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_on = crash_on
        self.upserts = 0

    def upsert(self, collection: str, ids: list[str], embeddings: np.ndarray,
               metadatas: list[dict[str, Any]], documents: list[str] | None = None) -> None:
        super().upsert(collection, ids, embeddings, metadatas, documents)
        self.upserts += 1
        if self.upserts == self.crash_on:
            raise RuntimeError(f"simulated crash after upserted group {self.upserts}")


def test_interrupted_ingest_keeps_the_old_version_and_a_rerun_recovers(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase], small_corpus: Path,
    small_corpus_ids: set[str],
) -> None:
    ingest(kb, small_corpus)
    old_doc = kb.manifest.documents("articles")[("articles", "kettle-care")]
    old_chunks = kb.manifest.chunk_ids("articles", "kettle-care")
    committed = assert_consistent(kb)

    path = small_corpus / "guides" / "kettle-care.md"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "equal parts white vinegar", "one part citric acid powder to ten parts"),
        encoding="utf-8")
    (small_corpus / "new-article.md").write_text(
        "# Store credit\n\nStore credit never expires and can be combined with gift cards.\n",
        encoding="utf-8")

    crashing = make_kb(index=CrashingIndex(path=kb.settings.chroma_dir),
                       chunk_tokens=CHUNK_TOKENS)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(crashing, small_corpus)

    # Nothing was committed: the manifest still describes the old version ...
    assert kb.manifest.documents("articles")[("articles", "kettle-care")] == old_doc
    assert kb.manifest.chunk_ids("articles", "kettle-care") == old_chunks
    assert doc_ids(kb) == small_corpus_ids
    assert {c.chunk_id for c in kb.manifest.chunks("articles")} == committed
    # ... while Chroma holds the vectors written before the crash (the orphans to clean up).
    orphans = set(kb.index.all_ids("articles")) - committed
    assert orphans
    assert committed <= set(kb.index.all_ids("articles"))

    # Search keeps serving the old version and never an orphan.
    reader = make_kb(chunk_tokens=CHUNK_TOKENS)
    hits = HybridRetriever(reader).search("descale the kettle with white vinegar", k=5)
    assert hits[0].article_id == "kettle-care"
    assert "equal parts white vinegar" in hits[0].snippet
    for query in ("citric acid powder", "store credit never expires"):
        for r in HybridRetriever(reader).search(query, k=10, mode="dense"):
            assert r.chunk_id in committed

    # A normal re-run cleans up and completes.
    rerun = make_kb(chunk_tokens=CHUNK_TOKENS)
    report = ingest(rerun, small_corpus)
    assert report.recovered == len(orphans)
    assert (report.added, report.updated, report.failed) == (1, 1, 0)
    assert rerun.manifest.pending() == {}
    ids = assert_consistent(rerun)
    assert set(rerun.index.all_ids("articles")) == ids
    assert old_chunks[0] not in ids
    assert doc_ids(rerun) == small_corpus_ids | {"new-article"}
    hits = HybridRetriever(rerun).search("descale the kettle with citric acid powder", k=1)
    assert hits[0].article_id == "kettle-care" and "citric acid" in hits[0].snippet


def test_crash_in_a_later_group_keeps_earlier_groups_committed(
    kb: KnowledgeBase, make_kb: Callable[..., KnowledgeBase], small_corpus: Path,
    small_corpus_ids: set[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Commit every few chunks so that five small documents make several groups.
    monkeypatch.setattr("app.knowledge.writer.COMMIT_CHUNKS", 3)
    crashing = make_kb(index=CrashingIndex(path=kb.settings.chroma_dir, crash_on=2),
                       chunk_tokens=CHUNK_TOKENS)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(crashing, small_corpus)

    committed_docs = doc_ids(kb)
    assert committed_docs and committed_docs < small_corpus_ids
    committed = {c.chunk_id for c in kb.manifest.chunks("articles")}
    in_chroma = set(kb.index.all_ids("articles"))
    assert committed < in_chroma  # the first group is complete, the second left orphans
    orphans = in_chroma - committed
    assert kb.manifest.pending()  # the journal remembers what to clean up

    rerun = make_kb(chunk_tokens=CHUNK_TOKENS)
    report = ingest(rerun, small_corpus)
    assert report.recovered == len(orphans)
    assert report.unchanged == len(committed_docs)
    assert report.added == len(small_corpus_ids) - len(committed_docs)
    assert doc_ids(rerun) == small_corpus_ids
    assert rerun.manifest.pending() == {}
    assert_consistent(rerun)


CONVERSATIONS = [
    {"conversation_id": "conv-pii", "channel": "email", "status": "resolved",
     "article_ids": ["double-charge"],
     "turns": [
         {"role": "customer", "text": "I was charged twice, my email is dana.reyes@example.com"},
         {"role": "agent", "text": "Sorry about that. Can you confirm your phone number?"},
         {"role": "customer", "text": "(415) 555-0134, card 4111 1111 1111 1111, I live at "
                                      "1842 Alder Creek Rd, Apt 3B. Order LM-48213907."},
         {"role": "agent", "text": "Thanks Dana, billing will refund the duplicate charge."},
     ]},
    {"conversation_id": "conv-open", "status": "open",
     "turns": [{"role": "customer", "text": "still waiting on my refund"}]},
    {"conversation_id": "conv-abandoned", "status": "abandoned",
     "turns": [{"role": "customer", "text": "hello?"}]},
    {"conversation_id": "conv-closed", "status": "closed", "article_ids": ["kettle-descaling"],
     "turns": [{"role": "customer", "text": "how do I descale my kettle"},
               {"role": "assistant", "text": "Boil equal parts vinegar and water, then rinse."}]},
]
RAW_PII = ["dana.reyes@example.com", "(415) 555-0134", "555-0134", "4111 1111 1111 1111",
           "1842 Alder Creek Rd"]


def test_conversations_are_filtered_scrubbed_and_linked(
    kb: KnowledgeBase, tmp_path: Path,
    read_chroma: Callable[[KnowledgeBase, str], dict[str, tuple[str, dict[str, Any]]]],
) -> None:
    path = tmp_path / "convs" / "2026-10.jsonl"
    path.parent.mkdir()
    path.write_text("\n".join(json.dumps(c) for c in CONVERSATIONS) + "\n", encoding="utf-8")
    report = ingest(kb, path.parent, collection="conversations")
    assert (report.added, report.skipped, report.failed) == (2, 2, 0)
    assert doc_ids(kb, "conversations") == {"conv-pii", "conv-closed"}
    assert doc_ids(kb, "articles") == set()
    assert kb.index.count("articles") == 0
    ids = assert_consistent(kb, "conversations")

    chunks = kb.manifest.chunks("conversations")
    stored = read_chroma(kb, "conversations")
    assert set(stored) == ids
    for c in chunks:
        assert c.chunk_id.startswith(f"{c.doc_id}::")
        document, meta = stored[c.chunk_id]
        assert meta["doc_id"] == c.doc_id
        assert meta["collection"] == "conversations"
        assert document == c.text
        for raw in RAW_PII:
            assert raw not in c.text and raw not in c.embed_text and raw not in document
    transcript = "\n".join(c.text for c in chunks if c.doc_id == "conv-pii")
    for tag in ("[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]"):
        assert tag in transcript
    # another customer's order number is theirs: redacted in the conversations collection
    assert "LM-48213907" not in transcript and "[ORDER]" in transcript
    assert transcript.startswith("Customer: I was charged twice")

    docs = kb.manifest.documents("conversations")
    pii_doc = docs[("conversations", "conv-pii")]
    assert pii_doc.title == "I was charged twice, my email is [EMAIL]"
    assert pii_doc.metadata["article_ids"] == ["double-charge"]
    assert all(raw not in meta["title"] for _, meta in stored.values() for raw in RAW_PII)

    hits = HybridRetriever(kb).search("charged twice refund", k=2, collections=("conversations",))
    assert hits[0].article_id == "conv-pii"
    assert hits[0].collection == "conversations"


def test_knowledge_root_ingests_only_articles_and_conversations(
    kb: KnowledgeBase, tmp_path: Path,
) -> None:
    root = tmp_path / "knowledge"
    (root / "articles" / "billing").mkdir(parents=True)
    (root / "conversations").mkdir()
    (root / "eval").mkdir()
    (root / "articles" / "billing" / "refunds.md").write_text(
        "---\nid: refunds\ntitle: Refunds\n---\nRefunds take five to ten business days.\n",
        encoding="utf-8")
    (root / "articles" / "es.md").write_text(
        "---\nid: reembolsos\ntitle: Reembolsos\nlocale: es-ES\n---\nLos reembolsos tardan.\n",
        encoding="utf-8")
    (root / "conversations" / "2026-10.jsonl").write_text(
        json.dumps(CONVERSATIONS[3]) + "\n", encoding="utf-8")
    # Beside them: an eval set and stray files that would load if they were walked.
    (root / "eval" / "questions.jsonl").write_text(
        json.dumps({"id": "q1", "question": "How long do refunds take?",
                    "answer": "Five to ten days.", "gold_article_ids": ["refunds"]}) + "\n",
        encoding="utf-8")
    (root / "FACTS.md").write_text("# Facts\n\nHouse facts for writers.\n", encoding="utf-8")
    (root / "README.md").write_text("# Read me\n\nNot an article.\n", encoding="utf-8")
    (root / "catalog.csv").write_text("id,text\nstray,Stray row.\n", encoding="utf-8")

    report = ingest(kb, root)
    assert report.failed == 0
    assert report.added == 3
    assert doc_ids(kb, "articles") == {"refunds", "reembolsos"}
    assert doc_ids(kb, "conversations") == {"conv-closed"}
    assert_consistent(kb, "articles")
    assert_consistent(kb, "conversations")


def test_bad_arguments_are_source_errors(kb: KnowledgeBase, small_corpus: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        ingest(kb, small_corpus / "missing")
    with pytest.raises(SourceError, match="unknown collection"):
        ingest(kb, small_corpus, collection="faqs")
    assert kb.manifest.counts() == {}
