"""Step 1 of a turn, retrieve (``app/responder/retrieval.py``): which messages are follow-ups,
and a new question is not mixed with the previous topic."""

from __future__ import annotations

import pytest

from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder, TurnInput
from app.responder.retrieval import is_follow_up
from app.responder.types import Turn
from app.responder.variants import Variant


@pytest.fixture(scope="module")
def responder(sample_kb: KnowledgeBase) -> Responder:
    return Responder(HybridRetriever(sample_kb), sample_kb.embedder.embed_query,
                     ExtractiveAnswerModel())


@pytest.mark.parametrize(("first", "second", "article"), [
    ("can I change my delivery address", "what is your return policy", "return-policy"),
    ("where is my order LM-48213907? it was due monday", "how do I reset my password",
     "reset-password"),
])
def test_a_short_new_question_is_not_mixed_with_the_previous_topic(
        responder: Responder, control: Variant, first: str, second: str, article: str) -> None:
    history = [Turn("customer", first), Turn("assistant", "…")]
    reply = responder.respond(TurnInput(second, control, history))
    assert reply.query == second
    assert reply.cited_article_ids == [article]


def test_follow_up_detection() -> None:
    assert is_follow_up("it still hasn't arrived")
    assert is_follow_up("what about Plus members?")
    assert is_follow_up("and now?")
    assert not is_follow_up("what is your return policy")
    assert not is_follow_up("how do I reset my password")
