"""The turn policy: the one path every entry point runs a customer turn through.

REST, SSE, ``WS /chat``, the stateless ``/api/v1/answer``, the facade, the evaluation runner and
the demo seeder all call this service, so the rules of a turn live here once: the message is
validated, the variant is the conversation's sticky one, the history and the clarified /
failed-turn state come from the stored conversation, the customer's message is committed
before anything else happens (a crash while the answer is generated loses nothing), and the
reply is stored with everything the responder recorded, opening a ticket when it escalates.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.config import Settings
from app.domain import DIALOGUE_ROLES, ConversationStatus, Decision, Reply, Role, Turn
from app.errors import ValidationError
from app.responder.responder import Responder, TurnInput
from app.responder.sentiment import score as sentiment_score
from app.responder.variants import Variant, VariantConfig, assign
from app.store import (
    ConversationRecord,
    FeedbackRecord,
    MessageRecord,
    Store,
    TicketRecord,
)

log = logging.getLogger("supportbot.conversations")


@dataclass
class TurnResult:
    """A customer message, the stored reply and the reply's details."""

    conversation: ConversationRecord
    customer_message: MessageRecord
    reply_message: MessageRecord
    reply: Reply
    ticket: TicketRecord | None = None


class ConversationService:
    """Conversations over the store, answered by the responder.

    Args:
        store: the database repositories.
        responder: answers one turn.
        variants: the A/B experiment.
        settings: limits (message size) and the workspace default.
    """

    def __init__(self, store: Store, responder: Responder, variants: VariantConfig,
                 settings: Settings) -> None:
        self.store = store
        self.responder = responder
        self.variants = variants
        self.settings = settings

    # ---- variants ----------------------------------------------------------------------
    def variant_for(self, workspace: str, user_id: str | None, override: str | None = None, *,
                    remember: bool = True) -> Variant:
        """Sticky, deterministic assignment; an override wins.

        The assignment is remembered in the store (``remember=False`` only reads it: the
        stateless answer stores nothing). Without a user or session id every call is its own
        unit of randomisation, never one bucket shared by all anonymous callers."""
        if override is not None:
            return self.variants.get(override)
        if not user_id:
            return assign(self.variants, workspace, f"anonymous-{uuid.uuid4().hex}")
        chosen = assign(self.variants, workspace, user_id)
        experiment = self.variants.experiment
        record = (self.store.variants.assign(user_id, experiment, chosen.name,
                                             workspace=workspace) if remember
                  else self.store.variants.get(user_id, experiment, workspace=workspace))
        if record is None:
            return chosen
        try:
            return self.variants.get(record.variant)
        except ValidationError:  # a variant removed from the config since: reassign
            return chosen

    # ---- conversations -----------------------------------------------------------------
    def start(self, user_id: str, channel: str = "web", initial_message: str | None = None,
              workspace: str | None = None, variant: str | None = None,
              metadata: dict[str, Any] | None = None, at: datetime | None = None,
              ) -> tuple[ConversationRecord, TurnResult | None]:
        """Open a conversation (answering ``initial_message`` if given); ``at`` backdates it
        (the demo seeder replays past conversations at their recorded times)."""
        if initial_message is not None:
            self.check_message(initial_message)
        if "\x00" in user_id:
            raise ValidationError("user_id contains a NUL character (\\x00); remove it")
        space = workspace or self.settings.workspace
        chosen = self.variant_for(space, user_id, variant)
        conv = self.store.conversations.create(
            workspace=space, user_id=user_id, channel=channel, variant=chosen.name,
            experiment=self.variants.experiment, metadata=metadata, at=at)
        if initial_message is None:
            return conv, None
        return conv, self.post(conv.id, initial_message, at=at)

    def check_message(self, text: str) -> str:
        """The customer's message, stripped; ``ValidationError`` naming the fix otherwise."""
        if not isinstance(text, str):
            raise ValidationError("message must be text")
        text = text.strip()
        if not text:
            raise ValidationError("message is empty; send the customer's text")
        if "\x00" in text:
            raise ValidationError("message contains a NUL character (\\x00); remove it")
        limit = self.settings.max_message_chars
        if len(text) > limit:
            raise ValidationError(
                f"message is {len(text)} characters; the limit is {limit} "
                "(SUPPORTBOT_MAX_MESSAGE_CHARS)")
        return text

    def post(self, conversation_id: str, text: str, at: datetime | None = None) -> TurnResult:
        """Store the customer's message, answer it, store the answer."""
        result = None
        for event in self.post_stream(conversation_id, text, at=at):
            if isinstance(event, TurnResult):
                result = event
        assert result is not None
        return result

    def post_stream(self, conversation_id: str, text: str,
                    at: datetime | None = None) -> Iterator[str | TurnResult]:
        """As ``post``, yielding the answer's text deltas first.

        ``at`` backdates the turn: the customer's message is stored at ``at`` and the reply (and
        its ticket) when it was ready, ``at`` plus the reply's latency; default now."""
        text = self.check_message(text)
        conv = self.store.conversations.get(conversation_id)
        history = self.store.messages.for_conversation(conversation_id)
        customer = self.store.messages.append(conversation_id, Role.CUSTOMER, text,
                                              sentiment=sentiment_score(text), at=at)
        variant = self._variant_of(conv)
        turn = TurnInput(
            message=text, variant=variant,
            history=[Turn(m.role, m.body) for m in history if m.role in DIALOGUE_ROLES],
            clarified_before=any(m.reply is not None and m.reply.decision == Decision.CLARIFY
                                 for m in history))
        reply: Reply | None = None
        for event in self.responder.respond_stream(turn):
            if isinstance(event, Reply):
                reply = event
            else:
                yield event
        assert reply is not None
        replied_at = None if at is None else at + timedelta(milliseconds=reply.latency_ms)
        stored = self.store.messages.append(conversation_id, Role.ASSISTANT, reply.text,
                                            reply=reply, at=replied_at)
        ticket = None
        if reply.decision == Decision.ESCALATE:
            ticket, _ = self.store.tickets.escalate(
                conversation_id, subject=_subject(text), reason_code=reply.reason,
                priority=reply.priority,
                description=f"Escalated by the assistant ({reply.reason}): {text}",
                at=replied_at)
        log.info("turn answered", extra={
            "conversation_id": conversation_id, "variant": variant.name,
            "decision": reply.decision, "reason": reply.reason,
            "latency_ms": round(reply.latency_ms, 1)})
        yield TurnResult(self.store.conversations.get(conversation_id), customer, stored,
                         reply, ticket)

    def answer_stream(self, question: str, history: Sequence[Turn] = (), *,
                      user_id: str | None = None, workspace: str | None = None,
                      variant: str | None = None) -> Iterator[str | Reply]:
        """A stateless turn (nothing stored): the same checks, variant rule and responder as a
        conversation's turn, over the history the caller sends."""
        text = self.check_message(question)
        if any("\x00" in t.text for t in history):
            raise ValidationError("history contains a NUL character (\\x00); remove it")
        chosen = self.variant_for(workspace or self.settings.workspace, user_id, variant,
                                  remember=False)
        yield from self.responder.respond_stream(TurnInput(text, chosen, list(history)))

    def answer(self, question: str, history: Sequence[Turn] = (), **kwargs: Any) -> Reply:
        """``answer_stream`` collected: the reply alone."""
        reply = None
        for event in self.answer_stream(question, history, **kwargs):
            if isinstance(event, Reply):
                reply = event
        assert reply is not None
        return reply

    def feedback(self, conversation_id: str, csat: int | None = None,
                 resolved: bool | None = None, comment: str | None = None) -> FeedbackRecord:
        """Record CSAT and/or the customer's "was this resolved"; a confirmed resolution
        closes an open conversation as resolved."""
        if csat is None and resolved is None:
            raise ValidationError("give csat (1-5) and/or resolved (true/false)")
        record = self.store.feedback.record(conversation_id, csat=csat, resolved=resolved,
                                            comment=comment)
        status = self.store.conversations.get(conversation_id).status
        if resolved and status == ConversationStatus.OPEN:
            self.store.conversations.set_status(conversation_id, ConversationStatus.RESOLVED)
        return record

    def _variant_of(self, conv: ConversationRecord) -> Variant:
        if conv.variant:
            try:
                return self.variants.get(conv.variant)
            except ValidationError:
                log.warning("conversation %s has unknown variant %s; reassigning", conv.id,
                            conv.variant)
        return self.variant_for(conv.workspace, conv.user_id or conv.id)


def _subject(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:77].rsplit(" ", 1)[0] + "…"
