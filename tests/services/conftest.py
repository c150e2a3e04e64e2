"""Service fixtures: the conversation service over a real store on SQLite and PostgreSQL.

``env`` holds one store per module and backend (PostgreSQL: the session's fresh database from
``tests/store/conftest.py``, failing rather than skipping when ``CI`` is set and it is down),
the sample knowledge base's retriever and the variants; ``env.service(model)`` wires a
``ConversationService`` around any ``AnswerModel``. Tests use their own user ids, so they never
see each other's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.base import AnswerModel
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder
from app.responder.variants import DEFAULT_VARIANTS_PATH, VariantConfig, load_variants
from app.services.conversations import ConversationService
from app.store import Store
from tests.store.conftest import BACKENDS, postgres_url  # noqa: F401  (fixture re-used here)


@dataclass
class ServiceEnv:
    """What a ``ConversationService`` is built from, on one backend."""

    store: Store
    settings: Settings
    retriever: HybridRetriever
    embed: Callable[[str], np.ndarray]
    variants: VariantConfig
    backend: str

    def service(self, model: AnswerModel | None = None, fallback: AnswerModel | None = None,
                variants: VariantConfig | None = None) -> ConversationService:
        responder = Responder(self.retriever, self.embed, model or ExtractiveAnswerModel(),
                              fallback)
        return ConversationService(self.store, responder, variants or self.variants,
                                   self.settings)

    def second_store(self) -> Store:
        """Another store (its own engine and connections) on the same database."""
        return Store.from_settings(self.settings)


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest, sample_kb: KnowledgeBase,
        make_settings: Callable[..., Settings],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceEnv]:
    backend = request.param
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    settings = make_settings(tmp_path_factory.mktemp(f"services-{backend}"), database_url=url,
                             variants_path=DEFAULT_VARIANTS_PATH)
    store = Store.from_settings(settings)
    try:
        yield ServiceEnv(store, settings, HybridRetriever(sample_kb),
                         sample_kb.embedder.embed_query, load_variants(DEFAULT_VARIANTS_PATH),
                         backend)
    finally:
        store.close()
