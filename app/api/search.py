"""Knowledge search over HTTP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from app.api.deps import RetrieverDep
from app.knowledge import COLLECTIONS

router = APIRouter(prefix="/api/v1", tags=["search"])


class SearchHit(BaseModel):
    article_id: str
    chunk_id: str
    title: str
    url: str
    snippet: str
    score: float
    collection: str
    section: str
    category: str
    locale: str


class SearchResponse(BaseModel):
    query: str
    results: list[SearchHit]


@router.get("/search", response_model=SearchResponse)
async def search(
    retriever: RetrieverDep,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="The question.")],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    collection: Annotated[list[str] | None, Query(description=f"One of {COLLECTIONS}")] = None,
    category: str | None = None,
    locale: str | None = None,
) -> SearchResponse:
    """Hybrid search: the best passage of each of the ``k`` most relevant articles."""
    colls = tuple(collection or ["articles"])
    for c in colls:
        if c not in COLLECTIONS:
            from fastapi import HTTPException

            raise HTTPException(
                422, f"unknown collection '{c}'; use one of {', '.join(COLLECTIONS)}")
    results = await run_in_threadpool(retriever.search, q, k, colls, category, locale)
    return SearchResponse(query=q, results=[SearchHit(**{
        f: getattr(r, f) for f in SearchHit.model_fields}) for r in results])
