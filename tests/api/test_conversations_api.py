"""REST conversations over SQLite and PostgreSQL: start, post, read, feedback, errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, unique

BASE = "/api/v1/conversations"
RETURN_QUESTION = "How do I start a return?"


def start(api: Api, **body: Any) -> dict[str, Any]:
    response = api.client.post(BASE, json={"user_id": unique("user"), **body})
    assert response.status_code == 201, response.text
    return response.json()


def error_fields(response: Any) -> set[str]:
    """The body fields a FastAPI 422 names."""
    return {str(err["loc"][-1]) for err in response.json()["detail"]}


def test_start_without_a_message_opens_an_empty_conversation(api: Api) -> None:
    user = unique("user")
    body = start(api, user_id=user, channel="sms", metadata={"plan": "plus"})
    conv = body["conversation"]
    assert body["reply"] is None and body["ticket"] is None
    assert conv["user_id"] == user and conv["channel"] == "sms" and conv["status"] == "open"
    assert conv["variant"] in {"control", "concise_empathetic"}
    assert conv["metadata"] == {"plan": "plus"}
    detail = api.client.get(f"{BASE}/{conv['id']}").json()
    assert detail["messages"] == [] and detail["tickets"] == []


def test_start_with_an_initial_message_answers_it_with_citations(api: Api) -> None:
    body = start(api, initial_message=RETURN_QUESTION, variant="control")
    reply = body["reply"]
    assert reply["decision"] == "answer" and reply["reason"] is None
    assert [c["id"] for c in reply["citations"]] == ["start-a-return"]
    citation = reply["citations"][0]
    assert citation["title"] == "How to start a return"
    assert citation["url"] == "https://help.lumen.example/articles/start-a-return"
    assert citation["url"] in reply["message"]
    assert reply["variant"] == "control" and body["conversation"]["variant"] == "control"
    assert reply["provider"] == "extractive" and reply["model"] == "extractive-v1"
    assert 0.0 <= reply["confidence"] <= 1.0 and reply["latency_ms"] > 0
    assert body["ticket"] is None and body["conversation"]["status"] == "open"


def test_messages_are_answered_and_read_back_in_order_with_decisions(api: Api) -> None:
    conv = start(api, variant="control")["conversation"]
    url = f"{BASE}/{conv['id']}/messages"
    first = api.client.post(url, json={"message": "where is my order LM-123, it was due monday"})
    assert first.status_code == 200, first.text
    second = api.client.post(url, json={"message": "it still hasn't arrived"})
    assert second.status_code == 200, second.text
    third = api.client.post(url, json={"message": "let me talk to a person"})
    assert third.status_code == 200, third.text
    assert second.json()["reply"]["citations"]
    assert third.json()["reply"]["decision"] == "escalate"

    detail = api.client.get(f"{BASE}/{conv['id']}")
    assert detail.status_code == 200
    messages = detail.json()["messages"]
    assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5, 6]
    assert [m["role"] for m in messages] == ["customer", "assistant"] * 3
    assert [m["body"] for m in messages[::2]] == [
        "where is my order LM-123, it was due monday", "it still hasn't arrived",
        "let me talk to a person"]
    assert [m["decision"] for m in messages] == [None, "answer", None, "answer", None,
                                                "escalate"]
    assert messages[5]["reason"] == "explicit_request"
    assert messages[3]["cited_article_ids"] == [
        c["id"] for c in second.json()["reply"]["citations"]]
    assert messages[3]["body"] == second.json()["reply"]["message"]
    assert all(m["variant"] == "control" for m in messages[1::2])
    assert detail.json()["conversation"]["status"] == "escalated"
    tickets = detail.json()["tickets"]
    assert len(tickets) == 1 and tickets[0]["reason_code"] == "explicit_request"
    assert third.json()["ticket"]["id"] == tickets[0]["id"]


def test_feedback_is_stored_and_resolves_the_conversation(api: Api) -> None:
    conv = start(api, initial_message=RETURN_QUESTION)["conversation"]
    response = api.client.post(f"{BASE}/{conv['id']}/feedback",
                               json={"csat": 5, "resolved": True, "comment": "quick, thanks"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["conversation_id"] == conv["id"]
    assert (body["csat"], body["resolved"]) == (5, True)
    stored = api.store.feedback.for_conversation(conv["id"])
    assert [(f.id, f.csat, f.resolved, f.comment) for f in stored] == [
        (body["id"], 5, True, "quick, thanks")]
    assert api.client.get(f"{BASE}/{conv['id']}").json()["conversation"]["status"] == "resolved"


@pytest.mark.parametrize("csat", [0, 6])
def test_csat_outside_1_to_5_is_422_naming_the_field(api: Api, csat: int) -> None:
    conv = start(api)["conversation"]
    response = api.client.post(f"{BASE}/{conv['id']}/feedback", json={"csat": csat})
    assert response.status_code == 422
    assert error_fields(response) == {"csat"}
    assert api.store.feedback.for_conversation(conv["id"]) == []


def test_empty_feedback_is_422(api: Api) -> None:
    conv = start(api)["conversation"]
    response = api.client.post(f"{BASE}/{conv['id']}/feedback", json={"comment": "meh"})
    assert response.status_code == 422
    assert "csat" in response.json()["detail"] and "resolved" in response.json()["detail"]


@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("get", "", None),
    ("post", "/messages", {"message": "where is my order?"}),
    ("post", "/feedback", {"csat": 4}),
], ids=["get", "message", "feedback"])
def test_unknown_conversation_is_404_with_a_clear_message(
        api: Api, method: str, suffix: str, body: dict[str, Any] | None) -> None:
    missing = unique("no-such-conversation")
    response = getattr(api.client, method)(f"{BASE}/{missing}{suffix}",
                                           **({"json": body} if body else {}))
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert missing in detail and "no conversation" in detail


@pytest.mark.parametrize(("body", "field"), [
    ({}, "user_id"),
    ({"user_id": ""}, "user_id"),
    ({"user_id": "u", "channel": "carrier-pigeon"}, "channel"),
    ({"user_id": "u", "initial_message": ""}, "initial_message"),
    ({"user_id": "u", "metadata": "not-a-mapping"}, "metadata"),
], ids=["missing-user", "empty-user", "bad-channel", "empty-message", "bad-metadata"])
def test_invalid_start_is_422_naming_the_field(api: Api, body: dict[str, Any],
                                               field: str) -> None:
    response = api.client.post(BASE, json=body)
    assert response.status_code == 422
    assert field in error_fields(response)


@pytest.mark.parametrize("body", [{}, {"message": ""}, {"message": 42}, {"text": "hi"}],
                         ids=["missing", "empty", "not-text", "wrong-name"])
def test_invalid_message_is_422_naming_the_field(api: Api, body: dict[str, Any]) -> None:
    conv = start(api)["conversation"]
    response = api.client.post(f"{BASE}/{conv['id']}/messages", json=body)
    assert response.status_code == 422
    assert error_fields(response) == {"message"}


def test_blank_message_is_422_and_stores_nothing(api: Api) -> None:
    conv = start(api)["conversation"]
    response = api.client.post(f"{BASE}/{conv['id']}/messages", json={"message": "   "})
    assert response.status_code == 422
    assert "empty" in response.json()["detail"]
    assert api.client.get(f"{BASE}/{conv['id']}").json()["messages"] == []


def test_oversize_message_is_422_with_the_limit_and_stores_nothing(api: Api) -> None:
    limit = api.settings.max_message_chars
    conv = start(api)["conversation"]
    response = api.client.post(f"{BASE}/{conv['id']}/messages",
                               json={"message": "a" * (limit + 1)})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert str(limit) in detail and str(limit + 1) in detail
    assert api.client.get(f"{BASE}/{conv['id']}").json()["messages"] == []
    exactly = api.client.post(f"{BASE}/{conv['id']}/messages",
                              json={"message": "where is my order " + "a" * (limit - 18)})
    assert exactly.status_code == 200, exactly.text


def test_oversize_initial_message_creates_no_conversation(api: Api) -> None:
    user = unique("user")
    limit = api.settings.max_message_chars
    response = api.client.post(BASE, json={"user_id": user,
                                           "initial_message": "b" * (limit + 1)})
    assert response.status_code == 422
    assert str(limit) in response.json()["detail"]
    assert api.store.conversations.find(user_id=user) == []


def test_unknown_variant_is_422_listing_the_valid_ones(api: Api) -> None:
    user = unique("user")
    response = api.client.post(BASE, json={"user_id": user, "variant": "shouty"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "shouty" in detail and "control" in detail and "concise_empathetic" in detail
    assert api.store.conversations.find(user_id=user) == []


def test_forced_variant_is_used_for_the_conversation_and_its_replies(api: Api) -> None:
    body = start(api, variant="concise_empathetic", initial_message=RETURN_QUESTION)
    assert body["conversation"]["variant"] == "concise_empathetic"
    assert body["reply"]["variant"] == "concise_empathetic"
    messages = api.client.get(f"{BASE}/{body['conversation']['id']}").json()["messages"]
    assert messages[1]["variant"] == "concise_empathetic"


def test_variant_is_sticky_per_user_across_conversations(api: Api) -> None:
    user = unique("user")
    variants = {start(api, user_id=user)["conversation"]["variant"] for _ in range(3)}
    assert len(variants) == 1


def test_nul_characters_are_refused_with_422(sqlite_api: Api) -> None:
    c = sqlite_api.client
    r = c.post("/api/v1/conversations", json={"user_id": "u\x00x", "channel": "web"})
    assert r.status_code == 422 and "NUL" in r.text
    r = c.post("/api/v1/conversations", json={"user_id": "nul-1", "channel": "web",
                                              "initial_message": "hi\x00there"})
    assert r.status_code == 422 and "NUL" in r.text
    r = c.post("/api/v1/answer", json={"question": "refund\x00?"})
    assert r.status_code == 422
