"""Shared FastAPI dependencies (``Annotated`` aliases handlers declare)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_kb(request: Request) -> KnowledgeBase:
    return request.app.state.kb  # type: ignore[no-any-return]


def get_retriever(request: Request) -> HybridRetriever:
    return request.app.state.retriever  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
KnowledgeDep = Annotated[KnowledgeBase, Depends(get_kb)]
RetrieverDep = Annotated[HybridRetriever, Depends(get_retriever)]
