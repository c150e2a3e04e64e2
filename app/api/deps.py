"""Shared FastAPI dependencies (``Annotated`` aliases handlers declare), all taken from the
components the composition root built (``app.state.components``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.config import Settings
from app.container import Components
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.services.conversations import ConversationService
from app.store import Store


# The getters are ``async`` because they only read an attribute: a sync dependency costs a
# thread-pool round trip per request.
async def components(request: Request) -> Components:
    engine: Components = request.app.state.components
    return engine


def _part(name: str) -> Any:
    async def get(request: Request) -> Any:
        return getattr(request.app.state.components, name)

    return get


ComponentsDep = Annotated[Components, Depends(components)]
SettingsDep = Annotated[Settings, Depends(_part("settings"))]
KnowledgeDep = Annotated[KnowledgeBase, Depends(_part("kb"))]
RetrieverDep = Annotated[HybridRetriever, Depends(_part("retriever"))]
StoreDep = Annotated[Store, Depends(_part("store"))]
ConversationsDep = Annotated[ConversationService, Depends(_part("conversations"))]
