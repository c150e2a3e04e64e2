"""Stateless answers: one question (with optional history) in, a cited reply out.

With ``Accept: text/event-stream`` the reply streams as Server-Sent Events: ``delta`` events
carry text as it is produced, then one ``reply`` event carries the full reply JSON (an
``error`` event replaces it if the turn fails).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.deps import ResponderDep, SettingsDep, VariantsDep
from app.api.schemas import ReplyOut
from app.errors import SupportbotError, ValidationError
from app.responder.responder import Reply, TurnInput
from app.responder.types import Turn
from app.responder.variants import assign

router = APIRouter(prefix="/api/v1", tags=["answer"])


class HistoryTurn(BaseModel):
    role: Literal["customer", "assistant", "agent"]
    text: str = Field(min_length=1, max_length=20_000)


class AnswerRequestIn(BaseModel):
    question: str = Field(min_length=1, description="The customer's message.")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=50)
    user_id: str | None = Field(default=None, description="For sticky variant assignment.")
    workspace: str | None = None
    variant: str | None = Field(default=None, description="Force a variant (testing).")


def _turn(body: AnswerRequestIn, variants: VariantsDep, settings: SettingsDep) -> TurnInput:
    limit = settings.max_message_chars
    if "\x00" in body.question or any("\x00" in t.text for t in body.history):
        raise ValidationError("text contains a NUL character (\\x00); remove it")
    if len(body.question) > limit:
        raise ValidationError(f"question is {len(body.question)} characters; the limit is "
                              f"{limit} (SUPPORTBOT_MAX_MESSAGE_CHARS)")
    variant = (variants.get(body.variant) if body.variant else
               assign(variants, body.workspace or settings.workspace, body.user_id or "anonymous"))
    history = [Turn(t.role, t.text) for t in body.history]
    return TurnInput(message=body.question.strip(), variant=variant, history=history,
                     clarified_before=False)


def _sse(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/answer", response_model=ReplyOut,
             responses={200: {"content": {"text/event-stream": {}}}})
def answer(body: AnswerRequestIn, request: Request, responder: ResponderDep,
           variants: VariantsDep, settings: SettingsDep) -> ReplyOut | StreamingResponse:
    """Answer one question without storing anything."""
    turn = _turn(body, variants, settings)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return ReplyOut.of(responder.respond(turn))

    def events() -> Iterator[str]:
        try:
            for event in responder.respond_stream(turn):
                if isinstance(event, Reply):
                    yield _sse("reply", ReplyOut.of(event).model_dump(mode="json"))
                else:
                    yield _sse("delta", {"text": event})
        except SupportbotError as e:
            yield _sse("error", {"detail": str(e)})

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
