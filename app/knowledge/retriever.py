"""Hybrid retrieval: dense (Chroma) + BM25, fused per passage, then one result per article.

Per passage, the cosine and the BM25 score (of the query with its typos corrected against the
index's words) are fused (``fusion.convex``); an article scores as its best passage plus a
little of each of its other candidate passages.

Chunk texts and metadata come from the manifest (the source of truth), so a dense hit that the
manifest does not know (left by an interrupted ingest) is never returned.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from app.errors import ConfigError, IndexStoreError
from app.knowledge import COLLECTIONS
from app.knowledge.base import KnowledgeBase
from app.knowledge.fusion import aggregate, convex, rrf
from app.knowledge.lexical import LexicalIndex, Lexicon, model_lexicon
from app.knowledge.manifest import ChunkRecord, DocRecord

Mode = Literal["hybrid", "dense", "lexical"]
Fusion = Literal["convex", "rrf"]


@dataclass
class SearchResult:
    """One retrieved article (or past conversation) with its best passage."""

    article_id: str
    chunk_id: str
    title: str
    url: str
    snippet: str
    score: float
    collection: str = "articles"
    section: str = ""
    category: str = ""
    locale: str = ""
    dense_score: float | None = None  # best cosine of any of the article's chunks
    # best BM25 score of any of the article's chunks, for the query as BM25 searched it (its
    # typos corrected: ``LexicalIndex.correct``)
    lexical_score: float | None = None
    dense_rank: int | None = None  # the article's rank in the dense list (1 = first)
    lexical_rank: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetrievalConfig:
    """Tuning knobs. The defaults won on every leave-one-domain-out fold of the four help
    centers (``benchmarks/bench_retrieval_domains.py``: chosen on three, measured on the
    fourth); ``BASELINE`` is the configuration before that.

    Args:
        candidates: passages taken from each of the dense and the BM25 ranking.
        exact_max_chunks: collections up to this many chunks are searched exactly in memory
            (Chroma's HNSW missed ~0.1% of true top-10 neighbours here, sometimes the best
            one); larger ones use Chroma.
        fusion: ``convex`` (cosine + ``lexical_weight`` × BM25 / the query's best BM25) or
            ``rrf`` (reciprocal rank: ``dense_weight``/(``rrf_k`` + rank) + the same for BM25
            with ``lexical_weight``).
        decay: an article's further candidate passages add this share of their scores.
        correct_typos: search BM25 with the query's unknown words corrected to the index's.
    """

    candidates: int = 40
    exact_max_chunks: int = 200_000
    fusion: Fusion = "convex"
    lexical_weight: float = 0.15
    dense_weight: float = 1.0
    rrf_k: int = 10
    decay: float = 0.05
    correct_typos: bool = True


#: the configuration before leave-one-domain-out tuning (RRF, chosen on Lumen alone)
BASELINE = RetrievalConfig(fusion="rrf", lexical_weight=1.0, decay=0.1, correct_typos=False)


@dataclass
class _Catalog:
    generation: int
    chunks: dict[str, ChunkRecord]
    docs: dict[str, DocRecord]
    order: list[str]  # chunk ids in lexical-index order
    by_doc: dict[str, list[str]] = field(default_factory=dict)  # doc id → its chunk ids
    vector_ids: list[str] = field(default_factory=list)  # rows of ``vectors``
    vector_row: dict[str, int] = field(default_factory=dict)  # chunk id → row
    vectors: np.ndarray | None = None  # live chunk vectors, for exact dense search


class Retriever(Protocol):
    """What the answer engine needs from retrieval (``HybridRetriever``; fakes in tests)."""

    def search(
        self, query: str, k: int = 5, collections: tuple[str, ...] = ("articles",),
        category: str | None = None, locale: str | None = None, mode: Mode = "hybrid",
        vector: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The ``k`` best articles for ``query``, best first."""
        ...

    def article_passages(
        self, article_id: str, vector: np.ndarray, collection: str = "articles", n: int = 3
    ) -> list[tuple[ChunkRecord, float]]:
        """The ``n`` chunks of one article closest to ``vector``, best first."""
        ...

    def article_texts(self, article_id: str, collection: str = "articles") -> list[str]:
        """The texts of all of one article's chunks, in article order."""
        ...


class HybridRetriever:
    """Searches one knowledge base.

    Args:
        kb: the knowledge base (manifest, Chroma, BM25, embedder).
        config: fusion settings.

    Example:
        >>> retriever = HybridRetriever(kb)
        >>> [r.article_id for r in retriever.search("where is my order", k=3)]
        ['track-order', 'late-or-missing-package', 'order-status-meanings']
    """

    def __init__(self, kb: KnowledgeBase, config: RetrievalConfig | None = None) -> None:
        self.kb = kb
        self.config = config or RetrievalConfig()
        self._catalogs: dict[str, _Catalog] = {}
        self._lock = threading.Lock()
        self._lexicon: Lexicon | None = None
        self._lexicon_looked_up = False

    def catalog(self, collection: str) -> _Catalog:
        """Chunks, documents and vectors of a collection, reloaded when the manifest changes.

        Vectors come from the manifest, written in the same transaction as the chunks they
        belong to, so the catalog is always consistent with itself whatever runs beside it."""
        generation = self.kb.manifest.generation(collection)
        with self._lock:
            cat = self._catalogs.get(collection)
            if cat is None or cat.generation != generation:
                chunks = {c.chunk_id: c for c in self.kb.manifest.chunks(collection)}
                docs = {d.doc_id: d for d in self.kb.manifest.documents(collection).values()}
                lex = self.kb.lexical(collection, generation)
                by_doc: dict[str, list[str]] = {}
                for c in chunks.values():
                    by_doc.setdefault(c.doc_id, []).append(c.chunk_id)
                cat = _Catalog(generation, chunks, docs, lex.chunk_ids, by_doc)
                if 0 < len(chunks) <= self.config.exact_max_chunks:
                    found = {cid: np.frombuffer(blob, dtype=np.float32)
                             for cid, blob in self.kb.manifest.vectors(collection).items()}
                    missing = [cid for cid in chunks if cid not in found]
                    if missing:  # a manifest from before vectors were kept in it
                        found.update(self.kb.index.vectors(collection, missing))
                    cat.vector_ids = [cid for cid in chunks if cid in found]
                    cat.vector_row = {cid: i for i, cid in enumerate(cat.vector_ids)}
                    cat.vectors = (np.stack([found[c] for c in cat.vector_ids])
                                   if cat.vector_ids else None)
                self._catalogs[collection] = cat
        if self.config.correct_typos:
            self.lexicon()  # ~0.1 s once: loaded with the catalogs, so warming up covers it
        return cat

    def search(
        self, query: str, k: int = 5, collections: tuple[str, ...] = ("articles",),
        category: str | None = None, locale: str | None = None, mode: Mode = "hybrid",
        vector: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The ``k`` best articles for ``query`` across ``collections``, best first."""
        query = query.strip()
        if not query:
            return []
        if vector is None and mode != "lexical":
            vector = self.kb.query_embedder.embed_query(query)
        results: list[SearchResult] = []
        for collection in collections:
            if collection not in COLLECTIONS:
                raise ValueError(f"unknown collection '{collection}'; use {', '.join(COLLECTIONS)}")
            results += self._search_one(query, vector, k, collection, category, locale, mode)
        results.sort(key=lambda r: -r.score)
        return results[:k]

    def search_many(self, queries: list[str], k: int = 5,
                    **kwargs: Any) -> list[list[SearchResult]]:
        """Search many queries, embedding them in one batch."""
        mode = kwargs.get("mode", "hybrid")
        vectors = (self.kb.query_embedder.embed_documents(queries) if mode != "lexical"
                   else [None] * len(queries))
        return [self.search(q, k, vector=v, **kwargs) for q, v in zip(queries, vectors,
                                                                        strict=True)]

    def article_passages(
        self, article_id: str, vector: np.ndarray, collection: str = "articles", n: int = 3
    ) -> list[tuple[ChunkRecord, float]]:
        """The ``n`` chunks of one article closest to the query vector, best first."""
        cat = self.catalog(collection)
        cosines = self._cosines(cat, collection, vector, cat.by_doc.get(article_id, []))
        scored = [(cat.chunks[cid], s) for cid, s in cosines.items()]
        scored.sort(key=lambda t: -t[1])
        return scored[:n]

    def article_texts(self, article_id: str, collection: str = "articles") -> list[str]:
        """The texts of all of one article's chunks, in article order."""
        cat = self.catalog(collection)
        chunks = [cat.chunks[cid] for cid in cat.by_doc.get(article_id, [])]
        return [c.text for c in sorted(chunks, key=lambda c: c.idx)]

    # ---- internals -------------------------------------------------------------------
    def lexicon(self) -> Lexicon | None:
        """Real words the corrector leaves alone: the embedding model's whole words."""
        if not self._lexicon_looked_up:
            try:
                self._lexicon = model_lexicon(Path(self.kb.model_path()))
            except ConfigError:  # a model without a word list: correct against the index only
                self._lexicon = None
            self._lexicon_looked_up = True
        return self._lexicon

    def _cosines(self, cat: _Catalog, collection: str, vector: np.ndarray,
                 ids: list[str]) -> dict[str, float]:
        """Cosine of each chunk to ``vector`` (from memory, else Chroma; unknown ids left out)."""
        if cat.vectors is not None:
            rows = [cat.vector_row[cid] for cid in ids if cid in cat.vector_row]
            if not rows:
                return {}
            found = cat.vectors[rows] @ vector.astype(np.float32)
            return {cat.vector_ids[r]: float(c) for r, c in zip(rows, found, strict=True)}
        vectors = self.kb.index.vectors(collection, ids)
        return {cid: float(vectors[cid] @ vector) for cid in ids if cid in vectors}

    def _dense(self, cat: _Catalog, collection: str, vector: np.ndarray, n: int,
               allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Nearest chunks by cosine: exact over the in-memory matrix, else Chroma's index
        (asked for more candidates when a filter will discard some)."""
        if cat.vectors is None:
            return self.kb.index.query(collection, vector, n * 4 if allowed else n)
        if cat.vectors.shape[1] != vector.shape[0]:
            raise IndexStoreError(
                f"the '{collection}' index holds {cat.vectors.shape[1]}-dimension vectors but "
                f"the configured embedding model makes {vector.shape[0]}: run 'supportbot "
                "ingest' again with this model to re-embed the collection")
        scores = cat.vectors @ vector.astype(np.float32)
        if allowed is not None:
            mask = np.fromiter((cid in allowed for cid in cat.vector_ids), bool,
                               len(cat.vector_ids))
            scores = np.where(mask, scores, -np.inf)
            n = min(n, int(mask.sum()))
            if n == 0:
                return []
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top])]
        return [(cat.vector_ids[i], float(scores[i])) for i in top]

    def _allowed(self, doc: DocRecord | None, category: str | None, locale: str | None) -> bool:
        if doc is None:
            return False
        if category and doc.metadata.get("category") != category:
            return False
        return not (locale and not str(doc.metadata.get("locale", "")).startswith(locale))

    def _search_one(
        self, query: str, vector: np.ndarray | None, k: int, collection: str,
        category: str | None, locale: str | None, mode: Mode,
    ) -> list[SearchResult]:
        cat = self.catalog(collection)
        if not cat.chunks:
            return []
        cfg = self.config
        filtered = bool(category or locale)
        n = cfg.candidates

        def ok(cid: str) -> bool:
            chunk = cat.chunks.get(cid)
            return chunk is not None and (not filtered or self._allowed(
                cat.docs.get(chunk.doc_id), category, locale))

        dense: list[tuple[str, float]] = []
        lexical: list[tuple[str, float]] = []
        allowed = None
        if filtered:
            # Search within the matching documents, not among the unfiltered top hits.
            allowed = {cid for cid in cat.chunks if ok(cid)}
            if not allowed:
                return []
        if mode in ("hybrid", "dense") and vector is not None:
            dense = [(c, s) for c, s in self._dense(cat, collection, vector, n, allowed)
                     if ok(c)]
        lex: LexicalIndex | None = None
        bm25 = None
        if mode in ("hybrid", "lexical"):
            lex = self.kb.lexical(collection, cat.generation)
            searched = lex.correct(query, self.lexicon()) if cfg.correct_typos else query
            bm25 = lex.scores(searched)
            lexical = [(c, s) for c, s in lex.top(bm25, n, allowed) if ok(c)]
        if cfg.fusion == "rrf":
            fused = rrf([(ranked, weight) for ranked, weight in (
                ([c for c, _ in dense], cfg.dense_weight),
                ([c for c, _ in lexical], cfg.lexical_weight)) if ranked], cfg.rrf_k)
        else:
            fused = self._convex(cat, collection, vector, dense, lexical, lex, bm25)
        ranked = aggregate(fused, lambda c: cat.chunks[c].doc_id, cfg.decay)[:k]
        dense_best, lex_best = _best_per_article(dense, cat), _best_per_article(lexical, cat)
        return [self._result(cat, collection, doc_id, score, cid, dense_best, lex_best)
                for doc_id, score, cid in ranked]

    def _convex(self, cat: _Catalog, collection: str, vector: np.ndarray | None,
                dense: list[tuple[str, float]], lexical: list[tuple[str, float]],
                lex: LexicalIndex | None, bm25: np.ndarray | None) -> dict[str, float]:
        """``fusion.convex`` over the union of both candidate lists, each passage with its
        exact cosine and BM25 score (not only those of the list it came from)."""
        cosines = dict(dense)
        lexical_scores = dict(lexical)
        if vector is not None:
            cosines.update(self._cosines(
                cat, collection, vector, [c for c in lexical_scores if c not in cosines]))
        else:
            cosines.update((c, 0.0) for c in lexical_scores)
        if lex is not None and bm25 is not None:
            lexical_scores.update(lex.scores_of(
                bm25, [c for c in cosines if c not in lexical_scores]))
        return convex(cosines, lexical_scores, self.config.lexical_weight)

    @staticmethod
    def _result(cat: _Catalog, collection: str, doc_id: str, score: float, cid: str,
                dense_best: dict[str, tuple[float, int]],
                lex_best: dict[str, tuple[float, int]]) -> SearchResult:
        chunk, doc = cat.chunks[cid], cat.docs[doc_id]
        return SearchResult(
            article_id=doc_id, chunk_id=cid, title=doc.title, url=doc.url,
            snippet=chunk.text, score=round(score, 6), collection=collection,
            section=chunk.section, category=str(doc.metadata.get("category", "")),
            locale=str(doc.metadata.get("locale", "")),
            dense_score=dense_best.get(doc_id, (None, None))[0],
            dense_rank=dense_best.get(doc_id, (None, None))[1],
            lexical_score=lex_best.get(doc_id, (None, None))[0],
            lexical_rank=lex_best.get(doc_id, (None, None))[1],
            metadata={k: v for k, v in doc.metadata.items() if k != "line"},
        )


def _best_per_article(
    hits: list[tuple[str, float]], cat: _Catalog
) -> dict[str, tuple[float, int]]:
    """Article → (its best chunk score, its rank among articles) for one ranked list."""
    best: dict[str, tuple[float, int]] = {}
    for cid, score in hits:
        doc_id = cat.chunks[cid].doc_id
        if doc_id not in best:
            best[doc_id] = (score, len(best) + 1)
    return best
