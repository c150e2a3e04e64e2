"""``POST /api/v1/answer``: JSON and Server-Sent Events, offline and through Claude (a fake
Messages API at the network edge, driven by the real ``anthropic`` SDK)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH
from tests.api.conftest import Api, started
from tests.fakes.claude_server import Behaviour, FakeClaudeServer, meta_block

URL = "/api/v1/answer"
SSE = {"Accept": "text/event-stream"}
Sse = Callable[[Iterator[str]], list[tuple[str, Any]]]


def stream(api: Api, sse: Sse, body: dict[str, Any]) -> list[tuple[str, Any]]:
    with api.client.stream("POST", URL, json=body, headers=SSE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse(response.iter_lines())


def test_json_answer_cites_the_article(sqlite_api: Api) -> None:
    response = sqlite_api.client.post(URL, json={"question": "How do I cancel my Lumen Plus "
                                                             "membership?"})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["decision"] == "answer"
    assert reply["citations"] == [{
        "id": "plus-cancel", "title": "Cancel your Lumen Plus membership",
        "url": "https://help.lumen.example/articles/plus-cancel"}]
    assert "Cancel membership" in reply["message"]
    assert reply["provider"] == "extractive" and reply["fallback_from"] is None
    assert reply["variant"] in {"control", "concise_empathetic"}


def test_json_answer_uses_the_history_for_a_follow_up(sqlite_api: Api) -> None:
    response = sqlite_api.client.post(URL, json={
        "question": "it still hasn't arrived",
        "history": [{"role": "customer", "text": "where is my order LM-123, it was due monday"},
                    {"role": "assistant", "text": "You can track it from Account → Orders."}],
        "variant": "control"})
    assert response.status_code == 200, response.text
    assert [c["id"] for c in response.json()["citations"]] == ["late-or-missing-package"]


def test_json_answer_escalates_a_request_for_a_person(sqlite_api: Api) -> None:
    reply = sqlite_api.client.post(URL, json={"question": "let me talk to a person"}).json()
    assert (reply["decision"], reply["reason"]) == ("escalate", "explicit_request")
    assert reply["citations"] == [] and reply["provider"] == "rules"


def test_forced_and_sticky_variants(sqlite_api: Api) -> None:
    forced = sqlite_api.client.post(URL, json={"question": "How do I start a return?",
                                               "variant": "concise_empathetic"}).json()
    assert forced["variant"] == "concise_empathetic"
    assert forced["message"].startswith("Happy to help.")
    sticky = {sqlite_api.client.post(URL, json={"question": "How do I start a return?",
                                                "user_id": "same-user"}).json()["variant"]
              for _ in range(2)}
    assert len(sticky) == 1


@pytest.mark.parametrize(("body", "field"), [
    ({}, "question"),
    ({"question": ""}, "question"),
    ({"question": "hi", "history": [{"role": "robot", "text": "beep"}]}, "role"),
    ({"question": "hi", "history": [{"role": "customer", "text": ""}]}, "text"),
], ids=["missing", "empty", "bad-role", "empty-history-text"])
def test_invalid_answer_request_is_422_naming_the_field(sqlite_api: Api, body: dict[str, Any],
                                                        field: str) -> None:
    response = sqlite_api.client.post(URL, json=body)
    assert response.status_code == 422
    assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}


def test_oversize_question_is_422_with_the_limit(sqlite_api: Api) -> None:
    limit = sqlite_api.settings.max_message_chars
    response = sqlite_api.client.post(URL, json={"question": "q" * (limit + 1)})
    assert response.status_code == 422
    assert str(limit) in response.json()["detail"]


def test_unknown_variant_is_422(sqlite_api: Api) -> None:
    response = sqlite_api.client.post(URL, json={"question": "refund?", "variant": "nope"})
    assert response.status_code == 422
    assert "nope" in response.json()["detail"]


def test_sse_streams_deltas_then_one_reply(sqlite_api: Api, sse: Sse) -> None:
    question = {"question": "How do I cancel my Lumen Plus membership?", "variant": "control"}
    events = stream(sqlite_api, sse, question)
    names = [name for name, _ in events]
    assert names[-1] == "reply" and names.count("reply") == 1
    assert set(names[:-1]) == {"delta"} and len(names) >= 2
    reply = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == reply["message"]
    assert [c["id"] for c in reply["citations"]] == ["plus-cancel"]
    plain = sqlite_api.client.post(URL, json=question).json()
    assert plain["message"] == reply["message"]


def test_sse_escalation_is_one_delta_and_the_reply(sqlite_api: Api, sse: Sse) -> None:
    events = stream(sqlite_api, sse, {"question": "someone hacked my account"})
    assert [name for name, _ in events] == ["delta", "reply"]
    reply = events[1][1]
    assert events[0][1]["text"] == reply["message"]
    assert (reply["decision"], reply["reason"]) == ("escalate", "account_takeover")


# ---- Claude through the API ---------------------------------------------------------------

@pytest.fixture(scope="module")
def claude() -> Iterator[FakeClaudeServer]:
    with FakeClaudeServer(chunk_size=7) as server:
        yield server


@pytest.fixture(scope="module")
def claude_api(claude: FakeClaudeServer, sample_kb: KnowledgeBase,
               make_settings: Callable[..., Any],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = make_settings(
        tmp_path_factory.mktemp("api-claude"), variants_path=DEFAULT_VARIANTS_PATH,
        anthropic_api_key="sk-test", claude_base_url=claude.url, claude_model="claude-test",
        claude_max_retries=1, claude_timeout=5.0)
    yield from started(settings, sample_kb, "sqlite")


@pytest.fixture
def fake(claude: FakeClaudeServer) -> FakeClaudeServer:
    claude.reset()
    return claude


CLAUDE_TEXT = ("Start your return from Account → Orders and choose Return or exchange items "
               "[start-a-return]. Refunds go to your original payment method.")


def test_claude_answers_through_the_api(claude_api: Api, fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.reply(CLAUDE_TEXT + meta_block(["start-a-return", "made-up-id"])))
    response = claude_api.client.post(URL, json={"question": "How do I start a return?",
                                                 "variant": "control"})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["message"] == CLAUDE_TEXT
    assert (reply["provider"], reply["model"]) == ("anthropic", "claude-test")
    assert reply["fallback_from"] is None
    assert reply["citations"] == [{
        "id": "start-a-return", "title": "How to start a return",
        "url": "https://help.lumen.example/articles/start-a-return"}]
    assert fake.request_count == 1
    request = fake.last_request
    assert request.api_key == "sk-test" and request.body["model"] == "claude-test"
    assert 'id="start-a-return"' in request.body["messages"][-1]["content"]
    assert "How do I start a return?" in request.body["messages"][-1]["content"]


def test_claude_streams_through_sse(claude_api: Api, fake: FakeClaudeServer, sse: Sse) -> None:
    fake.enqueue(Behaviour.reply(CLAUDE_TEXT + meta_block(["start-a-return"])))
    events = stream(claude_api, sse, {"question": "How do I start a return?"})
    deltas = [data["text"] for name, data in events if name == "delta"]
    assert len(deltas) > 3  # the fake sends 7-character chunks
    assert [name for name, _ in events][-1] == "reply"
    reply = events[-1][1]
    assert "".join(deltas) == reply["message"] == CLAUDE_TEXT
    assert "<meta" not in "".join(deltas)
    assert reply["provider"] == "anthropic"


def test_claude_asking_for_a_person_escalates(claude_api: Api, fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.reply("A teammate will look at this refund for you."
                                 + meta_block([], needs_human=True, reason="refund")))
    reply = claude_api.client.post(URL, json={"question": "How do I start a return?"}).json()
    assert (reply["decision"], reply["reason"]) == ("escalate", "model_requested")
    assert reply["message"].startswith("A teammate will look at this refund for you.")
    assert reply["provider"] == "anthropic"


def test_claude_failing_beyond_retries_falls_back_to_extractive(
        claude_api: Api, fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.server_error(500), Behaviour.server_error(500))
    response = claude_api.client.post(URL, json={"question": "How do I start a return?"})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert fake.request_count == 2  # the first attempt and claude_max_retries=1 retry
    assert (reply["provider"], reply["model"]) == ("extractive", "extractive-v1")
    assert reply["fallback_from"] == "anthropic"
    assert reply["decision"] == "answer"
    assert [c["id"] for c in reply["citations"]] == ["start-a-return"]
    assert "Account → Orders" in reply["message"]


def test_claude_failing_over_sse_still_ends_with_a_reply(
        claude_api: Api, fake: FakeClaudeServer, sse: Sse) -> None:
    fake.enqueue(Behaviour.server_error(503), Behaviour.overloaded())
    events = stream(claude_api, sse, {"question": "How do I start a return?"})
    assert [name for name, _ in events][-1] == "reply"
    reply = events[-1][1]
    assert reply["fallback_from"] == "anthropic" and reply["provider"] == "extractive"
    assert "".join(d["text"] for n, d in events if n == "delta") == reply["message"]


def test_answer_history_turns_are_size_limited(sqlite_api: Api) -> None:
    r = sqlite_api.client.post("/api/v1/answer", json={
        "question": "and now?", "history": [{"role": "customer", "text": "x" * 20_001}]})
    assert r.status_code == 422
    assert "history" in r.text
