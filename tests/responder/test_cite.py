"""Step 4 of a turn, cite (``app/responder/cite.py``): past conversations ground the answer but
are never shown to the customer."""

from __future__ import annotations

from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.base import AnswerModel
from app.responder.responder import Responder, TurnInput
from app.responder.types import AnswerRequest, ModelAnswer
from app.responder.variants import Variant


class CitesEverything(AnswerModel):
    """An answer model that cites every passage it was given (as Claude is told to)."""

    name = "cites-everything"

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        return ModelAnswer(text="Here is what I found.", cited_ids=[p.id for p in
                                                                    request.passages],
                           provider=self.name, model=self.name)


def test_past_conversations_are_never_customer_facing_citations(
        sample_kb: KnowledgeBase, control: Variant) -> None:
    responder = Responder(HybridRetriever(sample_kb), sample_kb.embedder.embed_query,
                          CitesEverything())
    reply = responder.respond(TurnInput("where is my order? it says shipped", control))
    given = {p.id: p.collection for p in reply.passages}
    assert "conversations" in given.values()  # the model did see past conversations
    assert reply.citations
    assert all(given[c.id] == "articles" for c in reply.citations)
    assert all(not c.id.startswith("conv-") for c in reply.citations)
