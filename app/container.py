"""The composition root: the one place the engine's components are built.

``build(settings)`` opens the knowledge base, the retriever, the query batcher, the answer
models, the responder, the variants, the store and the services, and ``Components.close()``
releases them. The API lifespan, the CLI, the facade, the evaluation, the demo seeder,
calibration and the benchmarks all start here, so a new collaborator is wired once.

Example:
    >>> with build(get_settings()) as c:
    ...     c.conversations.start("u-42", "web", "where is my order?")
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from app.config import Settings
from app.errors import ConfigError
from app.knowledge import COLLECTIONS
from app.knowledge.base import KnowledgeBase
from app.knowledge.batcher import QueryBatcher
from app.knowledge.embedder import Embedder, model_id
from app.knowledge.retriever import HybridRetriever
from app.responder.confidence import Calibration
from app.responder.handoff import ARTEFACT, HandoffModel
from app.responder.providers.base import AnswerModel
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder
from app.responder.variants import VariantConfig, load_variants
from app.services.conversations import ConversationService
from app.store import Store

log = logging.getLogger("supportbot")


@dataclass
class Components:
    """Everything one process runs the engine with."""

    settings: Settings
    kb: KnowledgeBase
    retriever: HybridRetriever
    batcher: QueryBatcher
    model: AnswerModel
    fallback: AnswerModel | None
    responder: Responder
    variants: VariantConfig
    store: Store
    conversations: ConversationService
    _owned: list[object] = field(default_factory=list, repr=False)

    def warm(self) -> None:
        """Finish an interrupted ingest's clean-up, load the model and the catalogs, so the
        first customer does not wait for them."""
        self.kb.recover_if_idle()
        self.batcher.embed("warm up")
        for collection in COLLECTIONS:
            self.retriever.catalog(collection)

    def close(self) -> None:
        """Stop the batcher and release what ``build`` opened (not what the caller passed)."""
        self.batcher.close()
        if self.store in self._owned:
            self.store.close()

    def __enter__(self) -> Components:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclass
class Knowledge:
    """The knowledge part alone (ingest, search, retrieval evaluation, calibration): no store,
    no answer models."""

    kb: KnowledgeBase
    retriever: HybridRetriever


def knowledge(settings: Settings, *, kb: KnowledgeBase | None = None,
              embedder: Embedder | None = None) -> Knowledge:
    """Open the knowledge base for ``settings`` (lazily: nothing loads until it is used);
    ``embedder``: an already loaded model to share (tests, benchmarks, the evaluation)."""
    kb = kb or KnowledgeBase(settings, embedder=embedder)
    return Knowledge(kb, HybridRetriever(kb))


def open_store(settings: Settings) -> Store:
    """The configured database (migrated to head); the caller closes it."""
    return Store.from_settings(settings)


@contextmanager
def scratch_store(settings: Settings) -> Iterator[Store]:
    """A throwaway SQLite store (the evaluation's conversations never reach the live one)."""
    with tempfile.TemporaryDirectory(prefix="supportbot-scratch-") as tmp:
        store = open_store(settings.model_copy(
            update={"database_url": f"sqlite:///{tmp}/scratch.sqlite3"}))
        try:
            yield store
        finally:
            store.close()


def answer_models(settings: Settings) -> tuple[AnswerModel, AnswerModel | None]:
    """Claude with the extractive model as its fallback when a key is set, else extractive."""
    extractive = ExtractiveAnswerModel()
    if not settings.anthropic_api_key:
        return extractive, None
    from app.responder.providers.anthropic import AnthropicAnswerModel

    return AnthropicAnswerModel.from_settings(settings), extractive


def handoff_model(settings: Settings) -> HandoffModel | None:
    """The shipped hand-off intent classifier, when it fits the configured embedding model
    (otherwise the phrase rules decide alone, and the log says how to retrain)."""
    if not ARTEFACT.exists():  # none shipped: the phrase rules decide alone
        return None
    try:
        return HandoffModel.load(ARTEFACT, embedding_model=model_id(settings.embedding_model))
    except ConfigError as e:
        log.warning("hand-off intent classifier off: %s", e)
        return None


def build(settings: Settings, *, kb: KnowledgeBase | None = None, store: Store | None = None,
          model: AnswerModel | None = None, fallback: AnswerModel | None = None,
          variants: VariantConfig | None = None,
          handoff: HandoffModel | Literal["configured"] | None = "configured",
          calibration: Calibration | None = None) -> Components:
    """Build the engine for ``settings``.

    Args:
        kb: an open knowledge base to use (tests share one; default: the configured one).
        store: a store to use (the evaluation passes a temporary one; default: the configured
            database, closed by ``close()``).
        model, fallback: answer models to use instead of the configured ones.
        variants: the A/B experiment (default: ``settings.variants_file``).
        handoff: a hand-off intent classifier to use instead of the shipped one (the
            evaluation passes one fitted without the domain it measures), or None for none.
        calibration: an answer-confidence calibration instead of the shipped one (the
            evaluation's leave-one-domain-out fits).
    """
    parts = knowledge(settings, kb=kb)
    kb, retriever = parts.kb, parts.retriever
    owned: list[object] = []
    if store is None:
        store = open_store(settings)
        owned.append(store)
    if model is None:
        model, fallback = answer_models(settings)
    batcher = QueryBatcher(lambda: kb.query_embedder)
    intent = handoff_model(settings) if handoff == "configured" else handoff
    responder = Responder(retriever, batcher.embed, model, fallback, intent, calibration)
    config = variants or load_variants(settings.variants_file)
    conversations = ConversationService(store, responder, config, settings)
    return Components(settings, kb, retriever, batcher, model, fallback, responder, config,
                      store, conversations, owned)
