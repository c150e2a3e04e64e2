"""The responder's steps (retrieve → assess → generate → cite) driven by a fake retriever and a
fixed query embedder: no embedding model, no Chroma. The fake implements the ``Retriever``
protocol the responder depends on; everything else is the real code."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from app.domain import Citation, Decision, Reason, Turn
from app.knowledge.manifest import ChunkRecord
from app.knowledge.retriever import Mode, Retriever, SearchResult
from app.responder.assess import assess, failed_turns
from app.responder.cite import cite
from app.responder.generate import passages_for
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder, TurnInput
from app.responder.retrieval import retrieve
from app.responder.types import Passage
from app.responder.variants import DEFAULT_VARIANTS_PATH, Variant, load_variants

DIM = 8


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    return v


class FakeRetriever:
    """A tiny help center in memory: each article has chunks; a query matches the articles
    whose keyword it contains (strong dense and lexical signals), nothing otherwise."""

    ARTICLES: ClassVar[dict[str, tuple[str, str, str, list[str]]]] = {
        "returns": ("Returns", "https://help.example/returns", "return", [
            "You can return any item within 30 days of delivery.",
            "1. Open Orders. 2. Choose the item. 3. Select Return and print the label."]),
        "refunds": ("Refunds", "https://help.example/refunds", "refund", [
            "Refunds reach your card 3 to 5 business days after we receive the item."]),
    }

    def __init__(self) -> None:
        self.queries: list[tuple[str, tuple[str, ...]]] = []

    def search(self, query: str, k: int = 5, collections: tuple[str, ...] = ("articles",),
               category: str | None = None, locale: str | None = None,
               mode: Mode = "hybrid", vector: np.ndarray | None = None) -> list[SearchResult]:
        self.queries.append((query, collections))
        if collections != ("articles",):
            return [SearchResult("conv-1", "conv-1:0", "Past chat", "", "a past chat", 0.2,
                                 collection="conversations")]
        hits = [(aid, t) for aid, t in self.ARTICLES.items() if t[2] in query.lower()]
        return [SearchResult(aid, f"{aid}:0", title, url, chunks[0], 1.0 - i / 10,
                             dense_score=0.9 - i / 10, lexical_score=8.0, dense_rank=i + 1,
                             lexical_rank=i + 1)
                for i, (aid, (title, url, _, chunks)) in enumerate(hits)][:k]

    def article_passages(self, article_id: str, vector: np.ndarray,
                         collection: str = "articles", n: int = 3
                         ) -> list[tuple[ChunkRecord, float]]:
        chunks = self.ARTICLES[article_id][3]
        return [(ChunkRecord(f"{article_id}:{i}", collection, article_id, i, "", text, text),
                 0.9 - i / 50) for i, text in enumerate(chunks)][:n]

    def article_texts(self, article_id: str, collection: str = "articles") -> list[str]:
        return list(self.ARTICLES[article_id][3])


def embed(text: str) -> np.ndarray:
    return unit(len(text))


@pytest.fixture(scope="module")
def variant() -> Variant:
    return load_variants(DEFAULT_VARIANTS_PATH).get("control")


def test_the_fake_satisfies_the_retriever_protocol() -> None:
    retriever: Retriever = FakeRetriever()  # mypy checks the structural type
    assert retriever.article_texts("refunds")


def test_a_follow_up_is_retrieved_with_its_context_when_that_is_more_confident() -> None:
    fake = FakeRetriever()
    history = [Turn("customer", "how do I return a lamp"), Turn("assistant", "…")]
    found = retrieve(fake, embed, "it still doesn't work", history, 4,
                     ("articles", "conversations"))
    assert found.query == "how do I return a lamp it still doesn't work"
    assert [r.article_id for r in found.articles] == ["returns"]
    assert found.others and found.others[0][0].collection == "conversations"
    # a message that stands on its own is never mixed with the previous one
    alone = retrieve(fake, embed, "how long do refunds take", history, 4, ("articles",))
    assert alone.query == "how long do refunds take" and alone.others == []


def test_assess_answers_clarifies_and_hands_off(variant: Variant) -> None:
    assert assess("how do returns work", [], 0.95, False, variant).decision.decision == "answer"
    vague = assess("hmm", [], 0.01, False, variant).decision
    assert vague.decision == Decision.CLARIFY and vague.reason == Reason.LOW_CONFIDENCE
    human = assess("let me talk to a person", [], 0.95, False, variant).decision
    assert human.decision == Decision.ESCALATE and human.reason == Reason.EXPLICIT_REQUEST
    history = [Turn("customer", "refund?"), Turn("assistant", "…"),
               Turn("customer", "that didn't help"), Turn("assistant", "…")]
    assert failed_turns(history, "still not working") == 2


def test_cite_keeps_only_given_articles_in_the_models_order() -> None:
    passages = [Passage("refunds", "r:0", "Refunds", "u/r", "t", 1.0),
                Passage("returns", "t:0", "Returns", "u/t", "t", 0.9),
                Passage("conv-1", "c:0", "Past chat", "", "t", 0.5, collection="conversations")]
    assert cite(["returns", "conv-1", "made-up", "refunds"], passages) == [
        Citation("returns", "Returns", "u/t"), Citation("refunds", "Refunds", "u/r")]


def test_passages_lead_with_the_top_articles_procedure() -> None:
    fake = FakeRetriever()
    found = retrieve(fake, embed, "how do I return an item", [], 4, ("articles",))
    passages = passages_for("how do I return an item", found, fake)
    assert passages[0].text.startswith("1. Open Orders")  # the procedure, asked "how do I"
    assert {p.id for p in passages} == {"returns"}


def test_the_responder_runs_every_step_over_the_fake(variant: Variant) -> None:
    fake = FakeRetriever()
    responder = Responder(fake, embed, ExtractiveAnswerModel())
    reply = responder.respond(TurnInput("how long does a refund take", variant))
    assert reply.decision == "answer" and reply.cited_article_ids == ["refunds"]
    assert "3 to 5 business days" in reply.text
    assert reply.query == "how long does a refund take" and reply.variant == "control"
    assert reply.retrieval[0]["id"] == "refunds"
    handed = responder.respond(TurnInput("I want a human", variant))
    assert (handed.decision, handed.reason, handed.citations) == ("escalate",
                                                                 "explicit_request", [])
