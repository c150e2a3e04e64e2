"""The FastAPI application: the HTTP edge over the components ``app.container`` builds."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from app.api import analytics, answer, chat_ws, conversations, health, search, tickets
from app.config import Settings, get_settings
from app.container import Components, build
from app.errors import NotFoundError, ProviderError, SupportbotError, ValidationError
from app.knowledge.base import KnowledgeBase
from app.store import Store

log = logging.getLogger("supportbot")


def create_app(settings: Settings | None = None, kb: KnowledgeBase | None = None,
               store: Store | None = None, components: Components | None = None) -> FastAPI:
    """The app over ``components`` (default: ``build(settings, kb=kb, store=store)``)."""
    settings = settings or get_settings()
    engine = components or build(settings, kb=kb, store=store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(engine.warm)
        app.state.ready = True
        yield
        app.state.ready = False
        engine.close()

    app = FastAPI(title="supportbot", version="0.1.0", lifespan=lifespan,
                  description="Grounded, cited AI answers over your help center.")
    app.state.components = engine
    app.state.ready = False
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
