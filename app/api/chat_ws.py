"""``WS /chat``: bidirectional chat with streamed answers, typing indicators, read receipts.

Protocol (JSON text frames):

client → server
- ``{"type": "start", "user_id": "u1", "channel": "web", "variant"?: "control"}`` opens a
  conversation; ``{"type": "start", "conversation_id": "..."}`` resumes one (its history comes
  back, so a dropped connection loses nothing).
- ``{"type": "message", "text": "...", "client_id"?: "..."}`` a customer message.
- ``{"type": "typing", "state": true|false}`` the customer is typing (acknowledged, not stored).
- ``{"type": "read", "seq": 7}`` the customer has read our messages up to ``seq``.

server → client
- ``ready`` (conversation, variant, history), ``ack`` (the stored customer message: delivery
  receipt, with ``client_id`` echoed), ``typing`` (assistant typing on/off), ``delta`` (answer
  text as it streams), ``message`` (the stored reply with decision, citations, ticket),
  ``receipt`` (``read`` receipts for our messages), ``error`` (with ``detail``; the socket stays
  open for recoverable errors).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from app.api.schemas import ConversationOut, MessageOut, TicketOut, reply_to_api
from app.errors import NotFoundError, SupportbotError
from app.services.conversations import ConversationService, TurnResult

router = APIRouter(tags=["chat"])
log = logging.getLogger("supportbot.chat")
_DONE = object()


async def _stream_turn(ws: WebSocket, service: ConversationService, conversation_id: str,
                       text: str, client_id: Any) -> None:
    """Run one turn in a worker thread, forwarding its deltas as they are produced."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    def work() -> None:
        try:
            for event in service.post_stream(conversation_id, text):
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except Exception as e:  # delivered to the socket below
            loop.call_soon_threadsafe(queue.put_nowait, e)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    worker = loop.run_in_executor(None, work)
    await ws.send_json({"type": "typing", "state": True})
    acked = False
    while True:
        event = await queue.get()
        if event is _DONE:
            break
        if isinstance(event, Exception):
            await ws.send_json({"type": "typing", "state": False})
            raise event
        if isinstance(event, str):
            await ws.send_json({"type": "delta", "text": event})
            continue
        assert isinstance(event, TurnResult)
        if not acked:
            await ws.send_json({"type": "ack", "client_id": client_id,
                                "message": MessageOut.of(event.customer_message)
                                .model_dump(mode="json")})
            acked = True
        await ws.send_json({"type": "typing", "state": False})
        await ws.send_json({
            "type": "message",
            "message": MessageOut.of(event.reply_message).model_dump(mode="json"),
            "reply": reply_to_api(event.reply).model_dump(mode="json"),
            "ticket": TicketOut.of(event.ticket).model_dump(mode="json") if event.ticket
            else None,
            "conversation": ConversationOut.of(event.conversation).model_dump(mode="json"),
        })
    await worker


@router.websocket("/chat")
async def chat(ws: WebSocket) -> None:
    """One customer's chat session (see the module docstring for the protocol)."""
    service: ConversationService = ws.app.state.components.conversations
    store = service.store
    await ws.accept()
    conversation_id: str | None = None
    try:
        while True:
            raw = await ws.receive_text()
            try:
                try:
                    frame = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise SupportbotError(f"frames must be JSON objects ({e.msg})") from e
                kind = frame.get("type") if isinstance(frame, dict) else None
                if kind == "start":
                    conversation_id = await _start(ws, service, frame)
                elif kind == "message":
                    text = str(frame.get("text") or "")
                    if conversation_id is None:
                        raise SupportbotError("send a 'start' frame before messages")
                    await _stream_turn(ws, service, conversation_id, text,
                                       frame.get("client_id"))
                elif kind == "typing":
                    await ws.send_json({"type": "typing_ack", "state": bool(frame.get("state"))})
                elif kind == "read":
                    if conversation_id is None:
                        raise SupportbotError("send a 'start' frame first")
                    seq = int(frame.get("seq", 0))
                    n = await run_in_threadpool(store.messages.mark_read, conversation_id, seq)
                    await ws.send_json({"type": "receipt", "status": "read", "up_to_seq": seq,
                                        "marked": n})
                else:
                    raise SupportbotError(
                        f"unknown frame type {kind!r}; use start, message, typing or read")
            except (SupportbotError, ValueError, TypeError) as e:
                await ws.send_json({"type": "error", "detail": str(e),
                                    "not_found": isinstance(e, NotFoundError)})
    except WebSocketDisconnect:
        return


async def _start(ws: WebSocket, service: ConversationService, frame: dict[str, Any]) -> str:
    store = service.store
    if frame.get("conversation_id"):
        conv = await run_in_threadpool(store.conversations.get, str(frame["conversation_id"]))
    else:
        user_id = str(frame.get("user_id") or "").strip()
        if not user_id:
            raise SupportbotError("'start' needs a user_id (or a conversation_id to resume)")
        conv, _ = await run_in_threadpool(service.start, user_id,
                                          str(frame.get("channel") or "web"), None, None,
                                          frame.get("variant"))
    history = await run_in_threadpool(store.messages.for_conversation, conv.id)
    await ws.send_json({"type": "ready",
                        "conversation": ConversationOut.of(conv).model_dump(mode="json"),
                        "history": [MessageOut.of(m).model_dump(mode="json") for m in history]})
    return conv.id
