"""The FastAPI application factory: every component is constructed here and nowhere deeper."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api import analytics, answer, chat_ws, conversations, health, search, tickets
from app.config import Settings, get_settings
from app.errors import NotFoundError, ProviderError, SupportbotError, ValidationError
from app.knowledge import COLLECTIONS
from app.knowledge.base import KnowledgeBase
from app.knowledge.batcher import QueryBatcher
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.base import AnswerModel
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder
from app.responder.variants import load_variants
from app.services.conversations import ConversationService
from app.store import Store

log = logging.getLogger("supportbot")


def answer_models(settings: Settings) -> tuple[AnswerModel, AnswerModel | None]:
    """Claude with the extractive model as its fallback when a key is set, else extractive."""
    extractive = ExtractiveAnswerModel()
    if not settings.anthropic_api_key:
        return extractive, None
    from app.responder.providers.anthropic import AnthropicAnswerModel

    claude = AnthropicAnswerModel(
        settings.anthropic_api_key, model=settings.claude_model,
        base_url=settings.claude_base_url, timeout=settings.claude_timeout,
        max_retries=settings.claude_max_retries)
    return claude, extractive


def build_responder(settings: Settings, kb: KnowledgeBase,
                    retriever: HybridRetriever) -> tuple[Responder, QueryBatcher]:
    batcher = QueryBatcher(lambda: kb.embedder)
    model, fallback = answer_models(settings)
    return Responder(retriever, batcher.embed, model, fallback), batcher


def _warm(kb: KnowledgeBase, retriever: HybridRetriever, batcher: QueryBatcher) -> None:
    kb.recover_if_idle()
    batcher.embed("warm up")
    for c in COLLECTIONS:
        retriever.catalog(c)


def create_app(settings: Settings | None = None, kb: KnowledgeBase | None = None,
               store: Store | None = None) -> FastAPI:
    """Build the app (tests pass their own settings, knowledge base and store)."""
    settings = settings or get_settings()
    kb = kb or KnowledgeBase(settings)
    store = store or Store.from_settings(settings)
    retriever = HybridRetriever(kb)
    responder, batcher = build_responder(settings, kb, retriever)
    variants = load_variants(settings.variants_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_warm, kb, retriever, batcher)
        app.state.ready = True
        yield
        app.state.ready = False
        batcher.close()

    app = FastAPI(title="supportbot", version="0.1.0", lifespan=lifespan,
                  description="Grounded, cited AI answers over your help center.")
    state = app.state
    state.settings, state.kb, state.retriever, state.store = settings, kb, retriever, store
    state.responder, state.batcher, state.variants = responder, batcher, variants
    state.conversations = ConversationService(store, responder, variants, settings)
    state.ready = False
    for module in (health, search, answer, conversations, tickets, analytics, chat_ws):
        app.include_router(module.router)
    _error_handlers(app)
    return app


def _error_handlers(app: FastAPI) -> None:
    statuses: list[tuple[type[SupportbotError], int]] = [
        (NotFoundError, 404), (ValidationError, 422), (ProviderError, 502),
        (SupportbotError, 500)]
    for exc_type, code in statuses:
        def handler(_: Request, exc: Exception, code: int = code) -> JSONResponse:
            if code >= 500:
                log.error("request failed: %s", exc)
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(exc_type, handler)
