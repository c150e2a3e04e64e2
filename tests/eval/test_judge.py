"""Claude as the correctness judge: the real anthropic SDK against the fake Messages API, and the
verdict parser on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from app.config import Settings
from eval.judge import JUDGE_PROMPT, ClaudeJudge, parse_verdict
from tests.fakes.claude_server import Behaviour, FakeClaudeServer

KEY = "sk-test"
QUESTION = "How long do I have to return a rug?"
REFERENCE = "Rugs can be returned within 30 days of delivery for a full refund."
ANSWER = "You have 30 days from delivery to return it, and you get a full refund."


@pytest.fixture(scope="module")
def server() -> Iterator[FakeClaudeServer]:
    with FakeClaudeServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeClaudeServer) -> FakeClaudeServer:
    server.reset()
    return server


def judge_for(server: FakeClaudeServer, max_retries: int = 0) -> ClaudeJudge:
    return ClaudeJudge(KEY, "claude-test", base_url=server.url, timeout=5.0,
                       max_retries=max_retries)


def verdict(correct: bool, reason: str = "same key facts") -> str:
    return json.dumps({"correct": correct, "reason": reason})


def test_a_correct_verdict_is_true_and_the_request_carries_the_three_texts(
        fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.reply(verdict(True)))
    judge = judge_for(fake)
    assert judge(QUESTION, REFERENCE, ANSWER) is True
    request = fake.last_request
    assert request.path == "/v1/messages" and request.api_key == KEY
    assert request.body["model"] == "claude-test"
    assert request.body["system"] == JUDGE_PROMPT
    [message] = request.body["messages"]
    assert message["role"] == "user"
    assert message["content"] == (f"<question>{QUESTION}</question>\n<reference>{REFERENCE}"
                                  f"</reference>\n<answer>{ANSWER}</answer>")
    assert judge.failures == 0


def test_an_incorrect_verdict_is_false(fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.reply("Here is my grading:\n" + verdict(False, "wrong window")))
    assert judge_for(fake)(QUESTION, REFERENCE, "You have 14 days.") is False


@pytest.mark.parametrize("text", [
    "The answer looks correct to me.",
    "",
    '{"correct": "yes", "reason": "fine"}',
    '{"correct": true, "reason": "cut off mid-',
    "<meta>not json</meta> }{",
])
def test_prose_or_garbage_gives_no_verdict_and_is_not_an_api_failure(
        fake: FakeClaudeServer, text: str) -> None:
    fake.enqueue(Behaviour.reply(text))
    judge = judge_for(fake)
    assert judge(QUESTION, REFERENCE, ANSWER) is None
    assert judge.failures == 0


def test_server_errors_beyond_the_retries_give_no_verdict_and_are_counted(
        fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.server_error(500), Behaviour.server_error(500),
                 Behaviour.reply(verdict(True)))
    judge = judge_for(fake, max_retries=1)
    assert judge(QUESTION, REFERENCE, ANSWER) is None
    assert fake.request_count == 2  # the first try and one retry
    assert judge.failures == 1
    assert judge(QUESTION, REFERENCE, ANSWER) is True  # the next case is judged again
    assert judge.failures == 1


def test_a_retried_server_error_still_gives_the_verdict(fake: FakeClaudeServer) -> None:
    fake.enqueue(Behaviour.server_error(503), Behaviour.reply(verdict(False)))
    judge = judge_for(fake, max_retries=1)
    assert judge(QUESTION, REFERENCE, ANSWER) is False
    assert (fake.request_count, judge.failures) == (2, 0)


def test_a_rejected_key_gives_no_verdict_and_is_counted(fake: FakeClaudeServer) -> None:
    judge = ClaudeJudge("sk-wrong", "claude-test", base_url=fake.url, max_retries=0)
    assert judge(QUESTION, REFERENCE, ANSWER) is None
    assert judge.failures == 1


def test_from_settings_needs_a_key_and_uses_the_configured_model_and_endpoint(
        fake: FakeClaudeServer) -> None:
    assert ClaudeJudge.from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    settings = Settings(_env_file=None, anthropic_api_key=KEY,  # type: ignore[call-arg]
                        claude_base_url=fake.url, claude_model="claude-judge-test",
                        claude_max_retries=0)
    judge = ClaudeJudge.from_settings(settings)
    assert judge is not None and judge.model == "claude-judge-test"
    fake.enqueue(Behaviour.reply(verdict(True)))
    assert judge(QUESTION, REFERENCE, ANSWER) is True
    assert fake.last_request.body["model"] == "claude-judge-test"


# ---- parse_verdict ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('{"correct": true, "reason": "same steps"}', True),
    ('{"correct": false, "reason": "misses the window"}', False),
    ('Sure. {"correct": true, "reason": "same steps"}', True),
    ('```json\n{\n  "correct": false,\n  "reason": "wrong article"\n}\n```', False),
    ('{"correct": true, "reason": "same", "detail": {"facts": 2}}', True),
    ('{"reason": "uses {order} wording", "correct": true}', True),
    ("The answer is correct.", None),
    ("", None),
    ("{}", None),
    ('{"verdict": true}', None),
    ('{"correct": "true"}', None),
    ('{"correct": 1}', None),
    ('{"correct": null}', None),
    ('{"correct": true', None),
    ('["correct", true]', None),
])
def test_parse_verdict(text: str, expected: bool | None) -> None:
    assert parse_verdict(text) is expected


def test_parse_verdict_with_text_after_the_json_that_has_braces() -> None:
    assert parse_verdict('{"correct": false, "reason": "wrong window"}\n'
                         "Note: the reference uses the {days} placeholder.") is False
