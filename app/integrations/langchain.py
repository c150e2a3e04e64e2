"""supportbot's hybrid retrieval as a LangChain retriever.

``SupportbotRetriever`` wraps a ready :class:`~app.knowledge.retriever.HybridRetriever` (dense +
BM25, fused, one passage per article) in LangChain's ``BaseRetriever`` interface, so it drops
into LCEL chains, agents and anything else that takes a retriever. It builds nothing itself:
construct the knowledge base and retriever where the rest of the service does and pass it in.

Example::

    retriever = SupportbotRetriever(retriever=knowledge(settings).retriever, k=3, locale="en")
    retriever.invoke("how do I reset my password")  # [Document(metadata={"article_id":
                                                     #   "reset-password", ...}), ...]
    chain = (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | prompt
        | llm
    )
    chain.invoke("how do I reset my password")

Only the ``articles`` collection is searched unless ``collections`` says otherwise: past
conversations hold customers' own words and are never handed to a chain by default.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from app.knowledge import COLLECTIONS
from app.knowledge.retriever import HybridRetriever, SearchResult

__all__ = ["SupportbotRetriever", "to_document"]

# Search options a single call may override: ``retriever.invoke(q, k=2, category="billing")``.
_OVERRIDABLE = frozenset({"k", "collections", "category", "locale"})


def to_document(result: SearchResult) -> Document:
    """One search result as a LangChain ``Document``: its best passage and where it came from."""
    return Document(
        page_content=result.snippet,
        id=result.chunk_id,
        metadata={
            "article_id": result.article_id,
            "chunk_id": result.chunk_id,
            "title": result.title,
            "url": result.url,
            "score": result.score,
            "collection": result.collection,
            "section": result.section,
            "category": result.category,
            "locale": result.locale,
        },
    )


def _check_collections(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("collections must name at least one collection")
    unknown = [c for c in value if c not in COLLECTIONS]
    if unknown:
        raise ValueError(f"unknown collection(s) {', '.join(map(repr, unknown))}; "
                         f"use {', '.join(COLLECTIONS)}")
    return tuple(value)


class SupportbotRetriever(BaseRetriever):
    """LangChain retriever over supportbot's :class:`HybridRetriever`.

    Attributes:
        retriever: the hybrid retriever to search (built elsewhere, e.g. by the app container).
        k: how many documents (articles, one passage each) to return, best first.
        collections: what to search; ``("articles",)`` by default. Add ``"conversations"``
            explicitly to search past conversations too.
        category: only articles of this category (e.g. ``"billing"``).
        locale: only articles whose locale starts with this (``"es"`` matches ``"es-ES"``).

    Any of ``k``, ``collections``, ``category`` and ``locale`` can also be given to one call:
    ``retriever.invoke("refund", k=2, category="billing")``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: HybridRetriever
    k: int = Field(default=4, ge=1)
    collections: tuple[str, ...] = ("articles",)
    category: str | None = None
    locale: str | None = None

    @field_validator("collections")
    @classmethod
    def _valid_collections(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_collections(value)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        unknown = set(kwargs) - _OVERRIDABLE
        if unknown:
            raise TypeError(f"unexpected search option(s): {', '.join(sorted(unknown))}; "
                            f"SupportbotRetriever accepts {', '.join(sorted(_OVERRIDABLE))}")
        k = kwargs.get("k", self.k)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        collections = _check_collections(tuple(kwargs.get("collections", self.collections)))
        results = self.retriever.search(
            query, k=k, collections=collections,
            category=kwargs.get("category", self.category),
            locale=kwargs.get("locale", self.locale),
        )
        return [to_document(r) for r in results]
