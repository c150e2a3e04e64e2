"""The responder in-process on the sample knowledge base: retrieve with context, decide, answer.

Answer models here are the real extractive model or small subclasses of ``AnswerModel`` (one
that records what it was asked, one that fails, one that asks for a person, one that streams in
pieces); retrieval and the embedding model are real.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.errors import ProviderError
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.base import AnswerModel
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Reply, Responder, TurnInput
from app.responder.types import AnswerRequest, ModelAnswer, Turn
from app.responder.variants import DEFAULT_VARIANTS_PATH, Variant, VariantConfig, load_variants

CATALOG = Path(__file__).resolve().parents[2] / "knowledge" / "CATALOG.tsv"
MakeResponder = Callable[..., Responder]
ORDER_QUESTION = "where is my order LM-123, it was due monday"


def catalog() -> dict[str, dict[str, str]]:
    with CATALOG.open(encoding="utf-8") as f:
        return {row["id"]: row for row in csv.DictReader(f, delimiter="\t")}


SHIPPING_ARTICLES = {i for i, row in catalog().items() if row["category"] == "orders-shipping"}


class RecordingModel(ExtractiveAnswerModel):
    """The extractive model, remembering every request it was given."""

    name = "recording"

    def __init__(self) -> None:
        self.requests: list[AnswerRequest] = []

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        self.requests.append(request)
        return super().answer(request)


class FailingModel(AnswerModel):
    """A provider that is down (its retries are spent)."""

    name = "flaky"
    model_id = "flaky-1"

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        raise ProviderError("flaky is down after 3 attempts; try again later")


class BreaksMidStreamModel(AnswerModel):
    """Streams part of an answer, then fails (as Claude's stream can)."""

    name = "breaks"
    can_stream = True

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        raise AssertionError("the responder streams")

    def stream(self, request: AnswerRequest) -> Iterator[str | ModelAnswer]:
        yield "You can start a return "
        yield "from your "
        raise ProviderError("the stream broke after part of the answer was sent")


class HandOffModel(AnswerModel):
    """A model that answers but asks for a person."""

    name = "handoff"
    model_id = "handoff-1"

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        return ModelAnswer(text="A teammate needs to approve this refund.",
                           cited_ids=[request.passages[0].id], provider=self.name,
                           model=self.model_id, needs_human=True, human_reason="refund")


class ChunkedModel(ExtractiveAnswerModel):
    """The extractive answer, streamed a few characters at a time; cites one unknown id."""

    name = "chunked"
    can_stream = True

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        answer = super().answer(request)
        answer.cited_ids = [*answer.cited_ids, "not-a-passage"]
        return answer

    def stream(self, request: AnswerRequest) -> Iterator[str | ModelAnswer]:
        answer = self.answer(request)
        for i in range(0, len(answer.text), 5):
            yield answer.text[i:i + 5]
        yield answer


@pytest.fixture(scope="module")
def retriever(sample_kb: KnowledgeBase) -> HybridRetriever:
    return HybridRetriever(sample_kb)


@pytest.fixture(scope="module")
def variants() -> VariantConfig:
    return load_variants(DEFAULT_VARIANTS_PATH)


@pytest.fixture(scope="module")
def control(variants: VariantConfig) -> Variant:
    return variants.get("control")


@pytest.fixture(scope="module")
def make(retriever: HybridRetriever, sample_kb: KnowledgeBase) -> MakeResponder:
    def build(model: AnswerModel | None = None, fallback: AnswerModel | None = None,
              **kwargs: object) -> Responder:
        return Responder(retriever, sample_kb.embedder.embed_query,
                         model or ExtractiveAnswerModel(), fallback, **kwargs)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="module")
def responder(make: MakeResponder) -> Responder:
    return make()


def stream(responder: Responder, turn: TurnInput) -> tuple[list[str], Reply]:
    events = list(responder.respond_stream(turn))
    *deltas, reply = events
    assert isinstance(reply, Reply) and all(isinstance(d, str) for d in deltas)
    return deltas, reply  # type: ignore[return-value]


# ---- answers with citations -----------------------------------------------------------------

@pytest.mark.parametrize(("question", "article"), [
    ("How do I start a return?", "start-a-return"),
    ("How do I cancel my Lumen Plus membership?", "plus-cancel"),
    ("How do I descale my kettle?", "kettle-descaling"),
    ("When will I get my refund?", "refund-timeline"),
    ("My promo code isn't working", "promo-code-not-working"),
    ("how do I track my order?", "track-order"),
])
def test_clear_question_gets_a_cited_answer(responder: Responder, control: Variant,
                                            sample_kb: KnowledgeBase, question: str,
                                            article: str) -> None:
    reply = responder.respond(TurnInput(question, control))
    assert (reply.decision, reply.reason) == ("answer", None)
    assert reply.cited_article_ids == [article]
    doc = next(d for d in sample_kb.manifest.documents("articles").values()
               if d.doc_id == article)
    citation = reply.citations[0]
    assert (citation.title, citation.url) == (doc.title, doc.url)
    assert citation.title == catalog()[article]["title"]
    assert citation.url in reply.text
    assert reply.confidence >= control.escalation.confidence_threshold


def test_follow_up_is_retrieved_with_the_earlier_message(responder: Responder,
                                                         control: Variant) -> None:
    first = responder.respond(TurnInput(ORDER_QUESTION, control))
    follow = responder.respond(TurnInput("it still hasn't arrived", control, history=[
        Turn("customer", ORDER_QUESTION), Turn("assistant", first.text)]))
    assert ORDER_QUESTION in follow.query and follow.query.endswith("it still hasn't arrived")
    assert follow.decision == "answer"
    assert follow.citations and set(follow.cited_article_ids) <= SHIPPING_ARTICLES
    alone = responder.respond(TurnInput("it still hasn't arrived", control))
    assert alone.query == "it still hasn't arrived"
    assert follow.confidence > alone.confidence  # the context is what makes it confident


def test_new_topic_does_not_use_the_previous_context(responder: Responder,
                                                     control: Variant) -> None:
    first = responder.respond(TurnInput(ORDER_QUESTION, control))
    reply = responder.respond(TurnInput("How do I descale my kettle?", control, history=[
        Turn("customer", ORDER_QUESTION), Turn("assistant", first.text)]))
    assert reply.query == "How do I descale my kettle?"
    assert reply.cited_article_ids == ["kettle-descaling"]
    assert not SHIPPING_ARTICLES & {r["id"] for r in reply.retrieval[:1]}


def test_the_model_gets_the_variant_history_and_best_passages(
        make: MakeResponder, control: Variant) -> None:
    model = RecordingModel()
    history = [Turn("customer", "hi"), Turn("assistant", "Hello! How can I help?")]
    reply = make(model).respond(TurnInput("How do I start a return?", control, history))
    (request,) = model.requests
    assert request.question == "How do I start a return?"
    assert request.system_prompt == control.system_prompt and request.style == control.style
    assert (request.variant, request.max_tokens) == ("control", control.max_tokens)
    assert request.history == history
    assert request.passages[0].id == "start-a-return"
    assert request.passages[0].confidence == pytest.approx(reply.confidence)
    assert reply.provider == "recording"


def test_citations_only_name_passages_the_model_was_given(
        make: MakeResponder, control: Variant) -> None:
    reply = make(ChunkedModel()).respond(TurnInput("How do I start a return?", control))
    assert reply.cited_article_ids == ["start-a-return"]


# ---- escalate and clarify -------------------------------------------------------------------

def test_explicit_request_for_a_person_escalates_without_a_model_call(
        make: MakeResponder, control: Variant) -> None:
    model = RecordingModel()
    reply = make(model).respond(TurnInput("let me talk to a person", control))
    assert (reply.decision, reply.reason, reply.priority) == ("escalate", "explicit_request",
                                                              "normal")
    assert model.requests == []
    assert (reply.provider, reply.model) == ("rules", "escalation-rules")
    assert reply.citations == [] and "person" in reply.text


@pytest.mark.parametrize(("message", "reason", "priority", "says"), [
    ("someone hacked my account and changed my password", "account_takeover", "urgent",
     "Forgot password"),
    ("there is an unauthorized charge on my card I didn't make", "sensitive_fraud", "high",
     "card issuer"),
    ("I'm going to sue you, I'll get a lawyer", "sensitive_legal", "high", "priority"),
    ("I want to kill myself", "self_harm", "urgent", "988"),
], ids=["account-takeover", "fraud", "legal", "self-harm"])
def test_sensitive_topics_escalate_with_reason_and_priority(
        make: MakeResponder, control: Variant,
        message: str, reason: str, priority: str, says: str) -> None:
    model = RecordingModel()
    reply = make(model).respond(TurnInput(message, control))
    assert (reply.decision, reply.reason, reply.priority) == ("escalate", reason, priority)
    assert says in reply.text and reply.citations == []
    assert model.requests == []


@pytest.mark.parametrize("message", ["what's the weather in paris tomorrow?", "hello"])
def test_out_of_scope_or_vague_message_asks_to_clarify(make: MakeResponder, control: Variant,
                                                       message: str) -> None:
    model = RecordingModel()
    reply = make(model).respond(TurnInput(message, control))
    assert (reply.decision, reply.reason, reply.priority) == ("clarify", "low_confidence", "low")
    assert reply.citations == [] and "?" in reply.text
    assert reply.confidence < control.escalation.confidence_threshold
    assert model.requests == []


def test_a_second_unclear_message_after_clarifying_escalates(responder: Responder,
                                                             control: Variant) -> None:
    reply = responder.respond(TurnInput("what's the weather in paris tomorrow?", control,
                                        clarified_before=True))
    assert (reply.decision, reply.reason, reply.priority) == ("escalate", "low_confidence", "low")


def test_model_asking_for_a_person_escalates(make: MakeResponder, control: Variant) -> None:
    reply = make(HandOffModel()).respond(TurnInput("How do I start a return?", control))
    assert (reply.decision, reply.reason, reply.priority) == ("escalate", "model_requested",
                                                              "normal")
    assert reply.detail == "refund"
    assert reply.text.startswith("A teammate needs to approve this refund.\n\n")
    assert "passed your conversation to our team" in reply.text
    assert reply.cited_article_ids == ["start-a-return"] and reply.provider == "handoff"


# ---- provider failure -------------------------------------------------------------------------

def test_failing_model_falls_back_to_the_extractive_answer(
        make: MakeResponder, control: Variant) -> None:
    reply = make(FailingModel(), fallback=ExtractiveAnswerModel()).respond(
        TurnInput("How do I start a return?", control))
    assert reply.decision == "answer"
    assert (reply.provider, reply.model, reply.fallback_from) == ("extractive", "extractive-v1",
                                                                  "flaky")
    assert reply.cited_article_ids == ["start-a-return"]


def test_failing_model_without_a_fallback_raises(make: MakeResponder, control: Variant) -> None:
    with pytest.raises(ProviderError, match="flaky is down"):
        make(FailingModel()).respond(TurnInput("How do I start a return?", control))


# ---- what every reply records ----------------------------------------------------------------

@pytest.mark.parametrize(("message", "decision"), [
    ("How do I start a return?", "answer"),
    ("what's the weather in paris tomorrow?", "clarify"),
    ("let me talk to a person", "escalate"),
])
def test_every_reply_records_how_it_was_made(responder: Responder, variants: VariantConfig,
                                             sample_kb: KnowledgeBase, message: str,
                                             decision: str) -> None:
    variant = variants.get("concise_empathetic")
    reply = responder.respond(TurnInput(message, variant))
    assert reply.decision == decision
    assert reply.variant == "concise_empathetic"
    assert 0.0 <= reply.confidence <= 1.0
    assert reply.latency_ms > 0 and reply.provider and reply.model
    assert -1.0 <= reply.sentiment <= 1.0
    articles = {d.doc_id for d in sample_kb.manifest.documents("articles").values()}
    hits = [r for r in reply.retrieval if r["collection"] == "articles"]
    assert 1 <= len(hits) <= variant.retrieval.k
    assert {r["id"] for r in hits} <= articles
    assert all(isinstance(r["score"], float) for r in reply.retrieval)
    assert [r["score"] for r in hits] == sorted((r["score"] for r in hits), reverse=True)
    assert any(r["collection"] == "conversations" for r in reply.retrieval)


def test_retrieval_follows_the_variant_settings(responder: Responder, control: Variant) -> None:
    narrow = control.model_copy(update={"name": "narrow", "retrieval": control.retrieval
                                        .model_copy(update={"k": 2,
                                                            "collections": ("articles",)})})
    reply = responder.respond(TurnInput("How do I start a return?", narrow))
    assert reply.variant == "narrow"
    assert [r["collection"] for r in reply.retrieval] == ["articles", "articles"]


def test_latency_is_measured_with_the_injected_clock(make: MakeResponder, control: Variant) -> None:
    ticks = itertools.count(start=100.0, step=0.25)
    reply = make(clock=lambda: next(ticks)).respond(TurnInput("How do I start a return?",
                                                              control))
    assert reply.latency_ms == pytest.approx(250.0)


# ---- streaming ----------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "message", "decision"), [
    (ExtractiveAnswerModel(), "How do I start a return?", "answer"),
    (ChunkedModel(), "How do I cancel my Lumen Plus membership?", "answer"),
    (HandOffModel(), "How do I start a return?", "escalate"),
    (ExtractiveAnswerModel(), "let me talk to a person", "escalate"),
    (ExtractiveAnswerModel(), "hello", "clarify"),
], ids=["extractive", "chunked", "model-hand-off", "rules-escalation", "clarify"])
def test_streamed_deltas_join_to_the_final_text(
        make: MakeResponder, control: Variant, model: AnswerModel,
                                                message: str, decision: str) -> None:
    deltas, reply = stream(make(model), TurnInput(message, control))
    assert reply.decision == decision
    assert deltas and "".join(deltas) == reply.text


def test_chunked_stream_yields_many_deltas(make: MakeResponder, control: Variant) -> None:
    deltas, reply = stream(make(ChunkedModel()), TurnInput("How do I start a return?", control))
    assert len(deltas) == -(-len(reply.text) // 5)


def test_fallback_after_nothing_was_streamed_streams_the_fallback(
        make: MakeResponder, control: Variant) -> None:
    deltas, reply = stream(make(FailingModel(), fallback=ExtractiveAnswerModel()),
                           TurnInput("How do I start a return?", control))
    assert reply.fallback_from == "flaky"
    assert "".join(deltas) == reply.text


def test_fallback_after_a_partial_stream_keeps_deltas_and_text_equal(
        make: MakeResponder, control: Variant) -> None:
    deltas, reply = stream(make(BreaksMidStreamModel(), fallback=ExtractiveAnswerModel()),
                           TurnInput("How do I start a return?", control))
    assert reply.fallback_from == "breaks" and reply.provider == "extractive"
    assert "".join(deltas) == reply.text
