"""``ConversationService`` on SQLite and PostgreSQL: turns, sticky variants, escalation."""

from __future__ import annotations

import uuid

import pytest

from app.errors import NotFoundError, ProviderError, ValidationError
from app.responder.providers.base import AnswerModel
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.types import AnswerRequest, ModelAnswer
from app.responder.variants import VariantConfig, assign
from app.services.conversations import TurnResult
from app.store import Store
from tests.services.conftest import ServiceEnv

RETURN_QUESTION = "How do I start a return?"
PLUS_QUESTION = "How do I cancel my Lumen Plus membership?"
ORDER_QUESTION = "where is my order LM-123, it was due monday"


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class CommitCheckingModel(ExtractiveAnswerModel):
    """Before answering, reads the conversation through another store (its own connections):
    what it sees is what was committed."""

    name = "commit-checking"

    def __init__(self, observer: Store) -> None:
        self.observer = observer
        self.conversation_id = ""
        self.seen: list[list[tuple[str, str]]] = []

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        stored = self.observer.messages.for_conversation(self.conversation_id)
        self.seen.append([(m.role, m.body) for m in stored])
        return super().answer(request)


class FailingModel(AnswerModel):
    name = "down"

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        raise ProviderError("the answer model is down; try again later")


def user_assigned_to(config: VariantConfig, variant: str) -> str:
    """A fresh user id whose sticky assignment is ``variant``."""
    while True:
        user = unique()
        if assign(config, "default", user).name == variant:
            return user


# ---- turns ----------------------------------------------------------------------------------

def test_customer_message_is_committed_before_the_answer_is_generated(env: ServiceEnv) -> None:
    observer = env.second_store()
    try:
        model = CommitCheckingModel(observer)
        service = env.service(model)
        conv, _ = service.start(unique(), variant="control")
        model.conversation_id = conv.id
        first = service.post(conv.id, RETURN_QUESTION)
        service.post(conv.id, PLUS_QUESTION)
    finally:
        observer.close()
    assert model.seen == [
        [("customer", RETURN_QUESTION)],
        [("customer", RETURN_QUESTION), ("assistant", first.reply.text),
         ("customer", PLUS_QUESTION)],
    ]


def test_customer_message_survives_a_failed_generation(env: ServiceEnv) -> None:
    conv, _ = env.service(FailingModel()).start(unique())
    with pytest.raises(ProviderError, match="down"):
        env.service(FailingModel()).post(conv.id, RETURN_QUESTION)
    stored = env.store.messages.for_conversation(conv.id)
    assert [(m.role, m.body) for m in stored] == [("customer", RETURN_QUESTION)]
    assert env.store.conversations.get(conv.id).last_customer_message_at is not None
    retry = env.service().post(conv.id, RETURN_QUESTION)
    assert retry.reply_message.seq == 3 and retry.reply.decision == "answer"


def test_initial_message_is_answered_and_everything_recorded_is_stored(env: ServiceEnv) -> None:
    user = unique()
    conv, turn = env.service().start(user, channel="email", initial_message=RETURN_QUESTION,
                                     variant="control", metadata={"source": "widget"})
    assert isinstance(turn, TurnResult) and turn.ticket is None
    assert (conv.user_id, conv.channel, conv.variant, conv.metadata) == (
        user, "email", "control", {"source": "widget"})
    assert conv.experiment == env.variants.experiment
    assert (turn.customer_message.seq, turn.customer_message.body) == (1, RETURN_QUESTION)
    assert turn.customer_message.sentiment is not None
    reply, stored = turn.reply, env.store.messages.get(turn.reply_message.id)
    assert (stored.seq, stored.role, stored.body) == (2, "assistant", reply.text)
    meta = stored.reply
    assert meta is not None
    assert (meta.decision, meta.reason, meta.variant) == ("answer", None, "control")
    assert meta.cited_article_ids == reply.cited_article_ids == ["start-a-return"]
    assert meta.retrieval == reply.retrieval and meta.retrieval
    assert meta.confidence == pytest.approx(reply.confidence)
    assert meta.latency_ms == pytest.approx(reply.latency_ms)
    assert (meta.provider, meta.model) == ("extractive", "extractive-v1")
    assert meta == reply  # the one reply record, stored whole (passages aside)


def test_follow_up_is_answered_with_the_stored_history(env: ServiceEnv) -> None:
    service = env.service()
    conv, _ = service.start(unique(), initial_message=ORDER_QUESTION, variant="control")
    follow = service.post(conv.id, "it still hasn't arrived")
    assert ORDER_QUESTION in follow.reply.query
    assert follow.reply.cited_article_ids == ["late-or-missing-package"]
    assert follow.customer_message.seq == 3 and follow.reply_message.seq == 4


def test_streamed_deltas_join_to_the_stored_reply(env: ServiceEnv) -> None:
    service = env.service()
    conv, _ = service.start(unique())
    events = list(service.post_stream(conv.id, PLUS_QUESTION))
    *deltas, result = events
    assert isinstance(result, TurnResult) and deltas
    assert "".join(deltas) == result.reply.text == result.reply_message.body  # type: ignore[arg-type]


def test_message_is_stored_trimmed(env: ServiceEnv) -> None:
    service = env.service()
    conv, _ = service.start(unique())
    turn = service.post(conv.id, f"   {RETURN_QUESTION}\n")
    assert turn.customer_message.body == RETURN_QUESTION


@pytest.mark.parametrize(("text", "says"), [("   ", "empty"), ("x" * 4001, "4000")],
                         ids=["blank", "oversize"])
def test_invalid_message_is_refused_and_nothing_is_stored(env: ServiceEnv, text: str,
                                                          says: str) -> None:
    service = env.service()
    assert service.settings.max_message_chars == 4000
    conv, _ = service.start(unique())
    with pytest.raises(ValidationError, match=says):
        service.post(conv.id, text)
    assert env.store.messages.for_conversation(conv.id) == []
    user = unique()
    with pytest.raises(ValidationError, match=says):
        service.start(user, initial_message=text)
    assert env.store.conversations.find(user_id=user) == []


def test_unknown_conversation_is_not_found(env: ServiceEnv) -> None:
    missing = unique("conversation")
    with pytest.raises(NotFoundError, match=missing):
        env.service().post(missing, RETURN_QUESTION)


# ---- variants -------------------------------------------------------------------------------

def test_variant_is_sticky_per_user_and_stored_on_conversations_and_replies(
        env: ServiceEnv) -> None:
    service = env.service()
    user = unique()
    expected = assign(env.variants, "default", user).name
    convs = [service.start(user, channel=channel, initial_message=RETURN_QUESTION)
             for channel in ("web", "sms", "email")]
    assert [c.variant for c, _ in convs] == [expected] * 3
    assert [t.reply.variant for _, t in convs] == [expected] * 3  # type: ignore[union-attr]
    for conv, turn in convs:
        assert env.store.conversations.get(conv.id).variant == expected
        assert env.store.messages.get(turn.reply_message.id).reply.variant == expected  # type: ignore[union-attr]
        later = service.post(conv.id, PLUS_QUESTION)
        assert later.reply.variant == expected
    record = env.store.variants.get(user, env.variants.experiment)
    assert record is not None and record.variant == expected


def test_stored_assignment_wins_over_a_reweighted_config(env: ServiceEnv) -> None:
    user = unique()
    first, _ = env.service().start(user)
    skewed = env.variants.model_copy(update={"variants": tuple(
        v.model_copy(update={"weight": 1e-9 if v.name == first.variant else 1e9})
        for v in env.variants.variants)})
    moved = assign(skewed, "default", user).name
    assert moved != first.variant  # the config alone would move this user
    service = env.service(variants=skewed)
    again, _ = service.start(user)
    assert again.variant == first.variant
    newcomer, _ = service.start(unique())
    assert newcomer.variant == moved


def test_override_variant_is_honoured_without_changing_the_sticky_one(env: ServiceEnv) -> None:
    service = env.service()
    user = user_assigned_to(env.variants, "control")
    conv, turn = service.start(user, initial_message=RETURN_QUESTION,
                               variant="concise_empathetic")
    assert conv.variant == "concise_empathetic"
    assert turn is not None and turn.reply.variant == "concise_empathetic"
    assert turn.reply.text.startswith("Happy to help.")
    assert service.post(conv.id, PLUS_QUESTION).reply.variant == "concise_empathetic"
    plain, _ = service.start(user)
    assert plain.variant == "control"


def test_unknown_variant_is_a_validation_error_naming_the_valid_ones(env: ServiceEnv) -> None:
    user = unique()
    with pytest.raises(ValidationError, match="unknown variant 'shouty'") as info:
        env.service().start(user, variant="shouty")
    assert "control" in str(info.value) and "concise_empathetic" in str(info.value)
    assert env.store.conversations.find(user_id=user) == []


def test_conversation_with_a_retired_variant_is_reassigned(env: ServiceEnv) -> None:
    user = unique()
    conv = env.store.conversations.create(user_id=user, variant="retired-arm")
    turn = env.service().post(conv.id, RETURN_QUESTION)
    assert turn.reply.variant == assign(env.variants, "default", user).name


# ---- escalation -----------------------------------------------------------------------------

def test_escalation_opens_one_ticket_and_a_second_escalation_updates_it(
        env: ServiceEnv) -> None:
    service = env.service()
    conv, _ = service.start(unique())
    answered = service.post(conv.id, RETURN_QUESTION)
    assert answered.ticket is None
    first = service.post(conv.id, "let me talk to a person")
    assert first.ticket is not None and first.reply.decision == "escalate"
    assert (first.ticket.reason_code, first.ticket.priority, first.ticket.status) == (
        "explicit_request", "normal", "open")
    assert first.ticket.subject == "let me talk to a person"
    assert first.conversation.status == "escalated"
    second = service.post(conv.id, "someone hacked my account")
    assert second.ticket is not None and second.ticket.id == first.ticket.id
    assert (second.ticket.reason_code, second.ticket.priority) == ("account_takeover", "urgent")
    assert "explicit_request" in second.ticket.description
    assert "account_takeover" in second.ticket.description
    tickets = env.store.tickets.find(conversation_id=conv.id)
    assert [t.id for t in tickets] == [first.ticket.id]


def test_second_unclear_message_escalates_after_a_clarifying_question(env: ServiceEnv) -> None:
    service = env.service()
    conv, turn = service.start(unique(), initial_message="what's the weather in paris tomorrow?")
    assert turn is not None and turn.reply.decision == "clarify" and turn.ticket is None
    assert env.store.tickets.find(conversation_id=conv.id) == []
    again = service.post(conv.id, "Who will win the football match on Saturday?")
    assert (again.reply.decision, again.reply.reason) == ("escalate", "low_confidence")
    assert again.ticket is not None and again.ticket.priority == "low"


# ---- feedback -------------------------------------------------------------------------------

def test_feedback_is_stored_and_resolves_the_conversation(env: ServiceEnv) -> None:
    service = env.service()
    conv, _ = service.start(unique(), initial_message=RETURN_QUESTION)
    record = service.feedback(conv.id, csat=5, resolved=True)  # type: ignore[attr-defined]
    assert (record.csat, record.resolved) == (5, True)
    assert [f.id for f in env.store.feedback.for_conversation(conv.id)] == [record.id]
    assert env.store.conversations.get(conv.id).status == "resolved"
