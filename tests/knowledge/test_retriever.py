"""Hybrid retrieval on the sample knowledge base (ingested once per session)."""

from __future__ import annotations

import pytest

from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import BASELINE, HybridRetriever, SearchResult


@pytest.fixture(scope="module")
def retriever(sample_kb: KnowledgeBase) -> HybridRetriever:
    return HybridRetriever(sample_kb)


def article_docs(kb: KnowledgeBase) -> dict[str, dict[str, object]]:
    return {d.doc_id: d.metadata for d in kb.manifest.documents("articles").values()}


def test_sample_ingest_was_clean(sample_kb: KnowledgeBase, sample: object) -> None:
    report = sample.report  # type: ignore[attr-defined]
    assert report.failed == 0, report.errors
    counts = sample_kb.manifest.counts()
    assert counts["articles"]["documents"] >= 20
    assert counts["articles"]["chunks"] == sample_kb.index.count("articles")


@pytest.mark.parametrize("question,expected", [
    ("I was charged twice for the same order", "double-charge"),
    ("how do I reset my password", "reset-password"),
    ("my lamp won't connect to wifi", "lamp-wifi-connection"),
    ("how do I cancel my Lumen Plus membership", "plus-cancel"),
    ("how do I print a return label", "return-shipping-label"),
    ("how can I track my package", "track-order"),
    ("how do I descale my kettle", "kettle-descaling"),
])
def test_realistic_questions_find_the_right_article(
    retriever: HybridRetriever, sample_kb: KnowledgeBase, question: str, expected: str,
) -> None:
    assert expected in article_docs(sample_kb), f"sample article {expected} is missing"
    top3 = [r.article_id for r in retriever.search(question, k=3)]
    assert expected in top3, top3


def test_results_are_typed_ranked_and_one_per_article(
    retriever: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    results = retriever.search("refund for a returned item", k=10)
    assert len(results) == 10
    assert all(isinstance(r, SearchResult) for r in results)
    ids = [r.article_id for r in results]
    assert len(set(ids)) == len(ids)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    docs = sample_kb.manifest.documents("articles")
    chunks = {c.chunk_id: c for c in sample_kb.manifest.chunks("articles")}
    for r in results:
        doc = docs[("articles", r.article_id)]
        assert chunks[r.chunk_id].doc_id == r.article_id
        assert r.snippet == chunks[r.chunk_id].text
        assert (r.title, r.url, r.collection) == (doc.title, doc.url, "articles")
        assert r.url.startswith("https://")
        assert "line" not in r.metadata
    assert set(results[0].to_dict()) >= {"article_id", "chunk_id", "title", "url", "score",
                                         "snippet"}


def test_k_limits_results(retriever: HybridRetriever) -> None:
    assert len(retriever.search("order", k=1)) == 1
    assert len(retriever.search("order", k=4)) == 4


def test_category_filter(retriever: HybridRetriever, sample_kb: KnowledgeBase) -> None:
    docs = article_docs(sample_kb)
    results = retriever.search("how do I get my money back", k=5, category="billing")
    assert results
    for r in results:
        assert r.category == "billing"
        assert docs[r.article_id]["category"] == "billing"
    unfiltered = retriever.search("how do I get my money back", k=5)
    assert {r.category for r in unfiltered} != {"billing"}  # the filter did something


def test_locale_filter_returns_only_spanish_articles(
    retriever: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    docs = article_docs(sample_kb)
    spanish = {d for d, meta in docs.items() if str(meta.get("locale", "")).startswith("es")}
    assert spanish, "the sample KB has no Spanish articles"
    results = retriever.search("¿Cómo cancelo mi suscripción a Lumen Plus?", k=5, locale="es")
    assert results
    assert results[0].article_id == "plus-cancel-es"
    for r in results:
        assert r.article_id in spanish
        assert r.article_id.endswith("-es")
        assert r.locale.startswith("es")
    english = retriever.search("cancel my Plus membership", k=5, locale="en")
    assert english and all(r.locale.startswith("en") for r in english)


def test_filtered_search_returns_every_match_up_to_k(
    retriever: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    docs = article_docs(sample_kb)
    spanish = {d for d, meta in docs.items() if str(meta.get("locale", "")).startswith("es")}
    results = retriever.search("where is my order", k=5, locale="es")
    assert len(results) == min(5, len(spanish))


def test_conversations_collection(retriever: HybridRetriever, sample_kb: KnowledgeBase) -> None:
    conversations = {d for _, d in sample_kb.manifest.documents("conversations")}
    assert conversations, "the sample KB has no conversations"
    results = retriever.search("please stop texting me about sales", k=3,
                               collections=("conversations",))
    assert len(results) == 3
    for r in results:
        assert r.collection == "conversations"
        assert r.article_id in conversations
        assert r.article_id not in article_docs(sample_kb)
    assert "marketing-opt-out" in results[0].metadata["article_ids"]


def test_both_collections_are_merged_by_score(retriever: HybridRetriever) -> None:
    results = retriever.search("please stop texting me about sales", k=6,
                               collections=("articles", "conversations"))
    assert len(results) == 6
    assert {r.collection for r in results} == {"articles", "conversations"}
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_returns_results(retriever: HybridRetriever, mode: str) -> None:
    results = retriever.search("reset my password", k=3, mode=mode)  # type: ignore[arg-type]
    assert len(results) == 3
    assert "reset-password" in [r.article_id for r in results]
    top = results[0]
    if mode == "dense":
        assert top.dense_score is not None and top.lexical_score is None
        assert 0.0 < top.dense_score <= 1.0
    elif mode == "lexical":
        assert top.lexical_score is not None and top.lexical_score > 0
        assert top.dense_score is None
    else:
        assert top.dense_score is not None or top.lexical_score is not None


def test_lexical_mode_does_not_need_the_model(
    sample_kb: KnowledgeBase, make_kb: object,
) -> None:
    offline = make_kb(data_dir=sample_kb.settings.data_dir,  # type: ignore[operator]
                      embedder_=lambda: pytest.fail("model loaded"))
    results = HybridRetriever(offline).search("gift card balance", k=3, mode="lexical")
    assert results and not offline.embedder_loaded


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_returns_nothing(retriever: HybridRetriever, query: str) -> None:
    assert retriever.search(query) == []


def test_unknown_collection_is_rejected(retriever: HybridRetriever) -> None:
    with pytest.raises(ValueError, match="unknown collection 'faq'"):
        retriever.search("refund", collections=("faq",))


def test_search_many_matches_single_searches(retriever: HybridRetriever) -> None:
    questions = ["where is my package", "change my email address", "kettle limescale"]
    batched = retriever.search_many(questions, k=3)
    single = [retriever.search(q, k=3) for q in questions]
    assert [[r.article_id for r in rs] for rs in batched] == [
        [r.article_id for r in rs] for rs in single]
    for got, want in zip(batched, single, strict=True):
        assert [r.score for r in got] == pytest.approx([r.score for r in want], abs=1e-5)


@pytest.mark.parametrize("typed,expected", [
    ("my lamp wont conect to the wifi", "lamp-wifi-connection"),
    ("how do I descale my kettel", "kettle-descaling"),
])
def test_a_typoed_query_still_finds_the_article(
    retriever: HybridRetriever, typed: str, expected: str,
) -> None:
    assert retriever.search(typed, k=1)[0].article_id == expected


def test_bm25_searches_the_corrected_words(
    retriever: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    uncorrected = HybridRetriever(sample_kb, BASELINE)
    assert uncorrected.search("kettel instrucions", k=3, mode="lexical") == []
    found = retriever.search("kettel instrucions", k=3, mode="lexical")
    assert found[0].article_id == "kettle-descaling"
    assert found[0].lexical_score is not None and found[0].lexical_score > 0


def test_shouting_finds_what_asking_finds(retriever: HybridRetriever) -> None:
    asked = retriever.search("how do I print a return label", k=5)
    shouted = retriever.search("HOW DO I PRINT A RETURN LABEL", k=5)
    assert [r.article_id for r in shouted] == [r.article_id for r in asked]


def test_lexical_score_is_the_articles_best_bm25_score(
    retriever: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    results = retriever.search("gift card balance", k=5)
    hits = sample_kb.lexical("articles").search("gift card balance", 40)
    chunks = {c.chunk_id: c for c in sample_kb.manifest.chunks("articles")}
    best: dict[str, float] = {}
    for cid, score in hits:
        best.setdefault(chunks[cid].doc_id, score)
    for r in results:
        assert r.lexical_score == pytest.approx(best.get(r.article_id)) if r.lexical_score \
            else r.article_id not in best
    ranked = [r for r in results if r.lexical_rank is not None]
    assert ranked and ranked[0].lexical_score == max(best.values())


def test_scores_fuse_the_cosine_with_normalised_bm25(retriever: HybridRetriever) -> None:
    top = retriever.search("how do I reset my password", k=3)
    cfg = retriever.config
    for r in top:  # best passage: cosine + w * bm25 / best bm25, plus a little of the others
        assert r.dense_score is not None
        assert r.score >= r.dense_score - 1e-6
        assert r.score <= r.dense_score + cfg.lexical_weight + cfg.decay * 40 * 1.2


def test_the_baseline_configuration_still_ranks(sample_kb: KnowledgeBase) -> None:
    baseline = HybridRetriever(sample_kb, BASELINE)
    results = baseline.search("how do I reset my password", k=3)
    assert results[0].article_id == "reset-password"
    assert 0 < results[0].score < 1  # reciprocal-rank scale
