"""Shared FastAPI dependencies (``Annotated`` aliases handlers declare)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.responder import Responder
from app.responder.variants import VariantConfig
from app.services.conversations import ConversationService
from app.store import Store


def _state(name: str) -> Any:
    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


SettingsDep = Annotated[Settings, Depends(_state("settings"))]
KnowledgeDep = Annotated[KnowledgeBase, Depends(_state("kb"))]
RetrieverDep = Annotated[HybridRetriever, Depends(_state("retriever"))]
ResponderDep = Annotated[Responder, Depends(_state("responder"))]
VariantsDep = Annotated[VariantConfig, Depends(_state("variants"))]
StoreDep = Annotated[Store, Depends(_state("store"))]
ConversationsDep = Annotated[ConversationService, Depends(_state("conversations"))]
