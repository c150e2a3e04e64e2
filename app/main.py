"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api import health, search
from app.config import Settings, get_settings
from app.errors import NotFoundError, SupportbotError
from app.knowledge import COLLECTIONS
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever

log = logging.getLogger("supportbot")


def _warm(kb: KnowledgeBase, retriever: HybridRetriever) -> None:
    kb.recover()
    kb.embedder.embed_query("warm up")
    for c in COLLECTIONS:
        retriever.catalog(c)


def create_app(settings: Settings | None = None, kb: KnowledgeBase | None = None) -> FastAPI:
    """Build the app; components are constructed here and nowhere deeper."""
    settings = settings or get_settings()
    kb = kb or KnowledgeBase(settings)
    retriever = HybridRetriever(kb)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_warm, kb, retriever)
        app.state.ready = True
        yield
        app.state.ready = False

    app = FastAPI(title="supportbot", version="0.1.0", lifespan=lifespan,
                  description="Grounded, cited AI answers over your help center.")
    app.state.settings = settings
    app.state.kb = kb
    app.state.retriever = retriever
    app.state.ready = False
    app.include_router(health.router)
    app.include_router(search.router)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(SupportbotError)
    async def supportbot_error(_: Request, exc: SupportbotError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    return app
