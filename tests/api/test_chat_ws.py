"""``WS /chat`` over SQLite and PostgreSQL: start, streamed turns, receipts, resume, errors."""

from __future__ import annotations

from typing import Any

from starlette.testclient import WebSocketTestSession

from tests.api.conftest import Api, unique


def start(ws: WebSocketTestSession, **frame: Any) -> dict[str, Any]:
    ws.send_json({"type": "start", **frame})
    ready = ws.receive_json()
    assert ready["type"] == "ready", ready
    return ready


def turn(ws: WebSocketTestSession, text: str, client_id: str | None = None
         ) -> list[dict[str, Any]]:
    """Send a message and collect frames up to and including the reply."""
    ws.send_json({"type": "message", "text": text, "client_id": client_id})
    frames = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        if frame["type"] in ("message", "error"):
            return frames


def test_start_is_ready_with_a_new_conversation(api: Api) -> None:
    user = unique("ws-user")
    with api.client.websocket_connect("/chat") as ws:
        ready = start(ws, user_id=user, channel="whatsapp", variant="control")
    conv = ready["conversation"]
    assert ready["history"] == []
    assert (conv["user_id"], conv["channel"], conv["variant"], conv["status"]) == (
        user, "whatsapp", "control", "open")
    assert api.store.conversations.get(conv["id"]).user_id == user


def test_message_streams_typing_deltas_ack_and_the_cited_reply(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        conv = start(ws, user_id=unique("ws-user"), variant="control")["conversation"]
        frames = turn(ws, "How do I cancel my Lumen Plus membership?", client_id="c-1")
    kinds = [f["type"] for f in frames]
    deltas = [f for f in frames if f["type"] == "delta"]
    assert kinds == ["typing", *["delta"] * len(deltas), "ack", "typing", "message"]
    assert deltas
    assert frames[0]["state"] is True and frames[-2]["state"] is False
    ack = frames[-3]
    assert ack["client_id"] == "c-1"
    assert ack["message"]["role"] == "customer" and ack["message"]["seq"] == 1
    assert ack["message"]["body"] == "How do I cancel my Lumen Plus membership?"
    final = frames[-1]
    reply = final["reply"]
    assert reply["decision"] == "answer"
    assert [c["id"] for c in reply["citations"]] == ["plus-cancel"]
    assert reply["citations"][0]["url"] == "https://help.lumen.example/articles/plus-cancel"
    assert "".join(d["text"] for d in deltas) == reply["message"]
    assert final["message"]["seq"] == 2 and final["message"]["role"] == "assistant"
    assert final["message"]["body"] == reply["message"]
    assert final["message"]["cited_article_ids"] == ["plus-cancel"]
    assert final["ticket"] is None and final["conversation"]["id"] == conv["id"]
    stored = api.store.messages.for_conversation(conv["id"])
    assert [(m.seq, m.role) for m in stored] == [(1, "customer"), (2, "assistant")]


def test_human_request_escalates_with_a_ticket(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        conv = start(ws, user_id=unique("ws-user"))["conversation"]
        final = turn(ws, "let me talk to a person")[-1]
    assert final["type"] == "message"
    assert (final["reply"]["decision"], final["reply"]["reason"]) == ("escalate",
                                                                     "explicit_request")
    assert final["message"]["decision"] == "escalate"
    ticket = final["ticket"]
    assert ticket["conversation_id"] == conv["id"] and ticket["status"] == "open"
    assert ticket["reason_code"] == "explicit_request"
    assert final["conversation"]["status"] == "escalated"
    assert [t.id for t in api.store.tickets.find(conversation_id=conv["id"])] == [ticket["id"]]


def test_read_frame_gets_a_receipt_and_marks_our_messages_read(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        conv = start(ws, user_id=unique("ws-user"))["conversation"]
        reply_seq = turn(ws, "How do I start a return?")[-1]["message"]["seq"]
        ws.send_json({"type": "read", "seq": reply_seq})
        receipt = ws.receive_json()
        ws.send_json({"type": "read", "seq": reply_seq})
        again = ws.receive_json()
    assert receipt == {"type": "receipt", "status": "read", "up_to_seq": reply_seq, "marked": 1}
    assert again["marked"] == 0  # already read
    stored = {m.role: m for m in api.store.messages.for_conversation(conv["id"])}
    assert stored["assistant"].read_at is not None
    assert stored["customer"].read_at is None  # receipts are for what we sent


def test_typing_frame_is_acknowledged(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        start(ws, user_id=unique("ws-user"))
        ws.send_json({"type": "typing", "state": True})
        assert ws.receive_json() == {"type": "typing_ack", "state": True}


def test_resume_on_a_new_connection_returns_the_full_history(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        conv = start(ws, user_id=unique("ws-user"), variant="control")["conversation"]
        first = turn(ws, "where is my order LM-123, it was due monday")[-1]
        second = turn(ws, "it still hasn't arrived")[-1]
    with api.client.websocket_connect("/chat") as ws:
        ready = start(ws, conversation_id=conv["id"])
        resumed = turn(ws, "How do I start a return?")[-1]
    assert ready["conversation"]["id"] == conv["id"]
    history = ready["history"]
    assert [(m["seq"], m["role"]) for m in history] == [
        (1, "customer"), (2, "assistant"), (3, "customer"), (4, "assistant")]
    assert [m["body"] for m in history] == [
        "where is my order LM-123, it was due monday", first["reply"]["message"],
        "it still hasn't arrived", second["reply"]["message"]]
    assert [m["decision"] for m in history] == [None, "answer", None, "answer"]
    assert resumed["message"]["seq"] == 6  # the resumed socket continues the conversation


def test_message_before_start_is_an_error_and_the_socket_stays_usable(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        ws.send_json({"type": "message", "text": "hello?"})
        error = ws.receive_json()
        ws.send_json({"type": "read", "seq": 1})
        read_error = ws.receive_json()
        ws.send_json({"type": "wave"})
        unknown = ws.receive_json()
        start(ws, user_id=unique("ws-user"))
        final = turn(ws, "How do I start a return?")[-1]
    assert error["type"] == "error" and error["not_found"] is False
    assert "start" in error["detail"]
    assert read_error["type"] == "error" and "start" in read_error["detail"]
    assert unknown["type"] == "error" and "wave" in unknown["detail"]
    assert final["type"] == "message" and final["reply"]["decision"] == "answer"


def test_unknown_conversation_is_an_error_with_not_found(api: Api) -> None:
    missing = unique("no-such-conversation")
    with api.client.websocket_connect("/chat") as ws:
        ws.send_json({"type": "start", "conversation_id": missing})
        error = ws.receive_json()
        ready = start(ws, user_id=unique("ws-user"))
    assert error["type"] == "error" and error["not_found"] is True
    assert missing in error["detail"]
    assert ready["type"] == "ready"


def test_start_without_a_user_is_an_error(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        ws.send_json({"type": "start"})
        error = ws.receive_json()
    assert error["type"] == "error" and "user_id" in error["detail"]
    assert error["not_found"] is False


def test_invalid_message_is_an_error_and_typing_stops(api: Api) -> None:
    limit = api.settings.max_message_chars
    with api.client.websocket_connect("/chat") as ws:
        conv = start(ws, user_id=unique("ws-user"))["conversation"]
        frames = turn(ws, "x" * (limit + 1))
        after = turn(ws, "How do I start a return?")[-1]
    assert [f["type"] for f in frames] == ["typing", "typing", "error"]
    assert frames[1]["state"] is False
    assert str(limit) in frames[-1]["detail"]
    assert after["type"] == "message"
    assert [m.seq for m in api.store.messages.for_conversation(conv["id"])] == [1, 2]


def test_frame_that_is_not_an_object_is_an_error(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        ws.send_json(["not", "an", "object"])
        error = ws.receive_json()
        ready = start(ws, user_id=unique("ws-user"))
    assert error["type"] == "error" and error["not_found"] is False
    assert ready["type"] == "ready"


def test_frame_that_is_not_json_is_an_error_and_the_socket_stays_usable(api: Api) -> None:
    with api.client.websocket_connect("/chat") as ws:
        ws.send_text("{not json")
        error = ws.receive_json()
        ready = start(ws, user_id=unique("ws-user"))
    assert error["type"] == "error"
    assert ready["type"] == "ready"


def test_ws_read_frame_with_a_bad_seq_is_an_error_and_the_socket_lives(sqlite_api: Api) -> None:
    with sqlite_api.client.websocket_connect("/chat") as ws:
        ws.send_json({"type": "start", "user_id": "ws-review"})
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"type": "read", "seq": None})
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "read", "seq": 0})
        assert ws.receive_json()["type"] == "receipt"
