"""Stateless answers: one question (with optional history) in, a cited reply out.

The turn runs through the same turn policy as a conversation's (``ConversationService``):
the same message checks, the same sticky variant rule (pass ``user_id`` — a user or session
id — to keep one caller on one variant; without it every request is its own unit) and the same
responder; nothing is stored.

With ``Accept: text/event-stream`` the reply streams as Server-Sent Events: ``delta`` events
carry text as it is produced, then one ``reply`` event carries the full reply JSON (an
``error`` event replaces it if the turn fails).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.api.deps import ConversationsDep
from app.api.schemas import ReplyOut, reply_to_api
from app.domain import Reply, Role, Turn
from app.errors import SupportbotError

router = APIRouter(prefix="/api/v1", tags=["answer"])


class HistoryTurn(BaseModel):
    role: Role
    text: str = Field(min_length=1, max_length=20_000)


class AnswerRequestIn(BaseModel):
    question: str = Field(min_length=1, description="The customer's message.")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=50)
    user_id: str | None = Field(default=None, max_length=200,
                                description="A user or session id, for sticky variant "
                                "assignment.")
    workspace: str | None = Field(default=None, max_length=64)
    variant: str | None = Field(default=None, description="Force a variant (testing).")


def _sse(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


@router.post("/answer", response_model=ReplyOut,
             responses={200: {"content": {"text/event-stream": {}}}})
async def answer(body: AnswerRequestIn, request: Request,
                 service: ConversationsDep) -> ReplyOut | StreamingResponse:
    """Answer one question without storing anything."""
    history = [Turn(t.role, t.text) for t in body.history]
    options = {"user_id": body.user_id, "workspace": body.workspace, "variant": body.variant}
    if "text/event-stream" not in request.headers.get("accept", ""):
        reply = await run_in_threadpool(service.answer, body.question, history, **options)
        return reply_to_api(reply)
    stream = service.answer_stream(body.question, history, **options)
    # validation errors surface here as a 422, before the stream opens
    first = await run_in_threadpool(next, stream)

    def events() -> Iterator[str]:
        try:
            for item in chain([first], stream):
                if isinstance(item, Reply):
                    yield _sse("reply", reply_to_api(item).model_dump(mode="json"))
                else:
                    yield _sse("delta", {"text": item})
        except SupportbotError as e:
            yield _sse("error", {"detail": str(e)})

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
