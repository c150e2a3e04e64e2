"""Conversations: start one, take a customer message, answer it, escalate, record feedback.

The customer's message is committed before anything else happens, so a crash while the answer
is generated loses nothing; the reply is stored with everything the responder recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.errors import ValidationError
from app.responder.responder import Reply, Responder, TurnInput
from app.responder.sentiment import score as sentiment_score
from app.responder.types import Turn
from app.responder.variants import Variant, VariantConfig, assign
from app.store import (
    ConversationRecord,
    FeedbackRecord,
    MessageRecord,
    ReplyMeta,
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
    def variant_for(self, workspace: str, user_id: str, override: str | None = None) -> Variant:
        """Sticky, deterministic assignment (remembered in the store); an override wins."""
        if override is not None:
            return self.variants.get(override)
        chosen = assign(self.variants, workspace, user_id)
        record = self.store.variants.assign(user_id, self.variants.experiment, chosen.name,
                                            workspace=workspace)
        try:
            return self.variants.get(record.variant)
        except ValidationError:  # a variant removed from the config since: reassign
            return chosen

    # ---- conversations -----------------------------------------------------------------
    def start(self, user_id: str, channel: str = "web", initial_message: str | None = None,
              workspace: str | None = None, variant: str | None = None,
              metadata: dict[str, Any] | None = None) -> tuple[ConversationRecord,
                                                                TurnResult | None]:
        """Open a conversation (answering ``initial_message`` if given)."""
        if initial_message is not None:
            self.check_message(initial_message)
        if "\x00" in user_id:
            raise ValidationError("user_id contains a NUL character (\\x00); remove it")
        space = workspace or self.settings.workspace
        chosen = self.variant_for(space, user_id, variant)
        conv = self.store.conversations.create(
            workspace=space, user_id=user_id, channel=channel, variant=chosen.name,
            experiment=self.variants.experiment, metadata=metadata)
        if initial_message is None:
            return conv, None
        return conv, self.post(conv.id, initial_message)

    def check_message(self, text: str) -> str:
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

    def post(self, conversation_id: str, text: str) -> TurnResult:
        """Store the customer's message, answer it, store the answer."""
        result = None
        for event in self.post_stream(conversation_id, text):
            if isinstance(event, TurnResult):
                result = event
        assert result is not None
        return result

    def post_stream(self, conversation_id: str, text: str) -> Iterator[str | TurnResult]:
        """As ``post``, yielding the answer's text deltas first."""
        text = self.check_message(text)
        conv = self.store.conversations.get(conversation_id)
        history = self.store.messages.for_conversation(conversation_id)
        customer = self.store.messages.append(conversation_id, "customer", text,
                                              sentiment=sentiment_score(text))
        variant = self._variant_of(conv)
        turn = TurnInput(
            message=text, variant=variant,
            history=[Turn(m.role, m.body) for m in history  # type: ignore[arg-type]
                     if m.role in ("customer", "assistant", "agent")],
            clarified_before=any(m.reply is not None and m.reply.decision == "clarify"
                                 for m in history))
        reply: Reply | None = None
        for event in self.responder.respond_stream(turn):
            if isinstance(event, Reply):
                reply = event
            else:
                yield event
        assert reply is not None
        stored = self.store.messages.append(conversation_id, "assistant", reply.text,
                                            reply=self.reply_meta(reply))
        ticket = None
        if reply.decision == "escalate":
            ticket, _ = self.store.tickets.escalate(
                conversation_id, subject=_subject(text), reason_code=reply.reason,
                priority=reply.priority,
                description=f"Escalated by the assistant ({reply.reason}): {text}")
        log.info("turn answered", extra={
            "conversation_id": conversation_id, "variant": variant.name,
            "decision": reply.decision, "reason": reply.reason,
            "latency_ms": round(reply.latency_ms, 1)})
        yield TurnResult(self.store.conversations.get(conversation_id), customer, stored,
                         reply, ticket)

    def feedback(self, conversation_id: str, csat: int | None = None,
                 resolved: bool | None = None, comment: str | None = None) -> FeedbackRecord:
        """Record CSAT and/or the customer's "was this resolved"; a confirmed resolution
        closes an open conversation as resolved."""
        if csat is None and resolved is None:
            raise ValidationError("give csat (1-5) and/or resolved (true/false)")
        record = self.store.feedback.record(conversation_id, csat=csat, resolved=resolved,
                                            comment=comment)
        if resolved and self.store.conversations.get(conversation_id).status == "open":
            self.store.conversations.set_status(conversation_id, "resolved")
        return record

    def _variant_of(self, conv: ConversationRecord) -> Variant:
        if conv.variant:
            try:
                return self.variants.get(conv.variant)
            except ValidationError:
                log.warning("conversation %s has unknown variant %s; reassigning", conv.id,
                            conv.variant)
        return self.variant_for(conv.workspace, conv.user_id or conv.id)

    @staticmethod
    def reply_meta(reply: Reply) -> ReplyMeta:
        usage = reply.usage
        return ReplyMeta(
            decision=reply.decision, reason=reply.reason,
            cited_article_ids=reply.cited_article_ids, retrieval_scores=reply.retrieval,
            confidence=reply.confidence, latency_ms=reply.latency_ms, provider=reply.provider,
            model=reply.model, input_tokens=usage.input_tokens if usage else None,
            output_tokens=usage.output_tokens if usage else None, variant=reply.variant)


def _subject(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 80 else line[:77].rsplit(" ", 1)[0] + "…"
