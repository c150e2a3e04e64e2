"""The seed's "Usage Examples" and "Customization" snippets run as printed (``docs/python-api.md``).

The blocks are read from the document, not retyped here, and run in order in one namespace (as
a reader pasting them into one session would), the Multi-Channel block's top-level ``await``s
included. ``api_key="your_api_key"`` goes to a local fake Claude server (the real ``anthropic``
SDK over HTTP); the data directory is fresh, so the chatbot ingests ``knowledge/`` itself.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.claude_server import FakeClaudeServer

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
_BLOCK = re.compile(r"^### (.+?)\n```python\n(.*?)^```", re.M | re.S)


def seed_blocks() -> dict[str, str]:
    """The document's ``python`` blocks by their heading, in order."""
    return {title: code for title, code in _BLOCK.findall(DOC.read_text(encoding="utf-8"))}


def run_block(code: str, namespace: dict[str, Any]) -> str:
    """Run one block as a top-level script (``await`` allowed); returns what it printed."""
    compiled = compile(code, str(DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(compiled, namespace)  # the documented snippets themselves
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    return out.getvalue()


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeClaudeServer]:
    with FakeClaudeServer() as server:
        yield server


@pytest.fixture(scope="module")
def session(claude: FakeClaudeServer, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Every block run once, in order; the namespace and each block's output."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path_factory.mktemp("seed") / "data"))
    mp.setenv("SUPPORTBOT_CLAUDE_BASE_URL", claude.url)
    mp.setenv("SUPPORTBOT_CLAUDE_MAX_RETRIES", "0")
    namespace: dict[str, Any] = {"__name__": "__seed__"}
    outputs: dict[str, str] = {}
    try:
        for title, code in seed_blocks().items():
            outputs[title] = run_block(code, namespace)
        yield namespace, outputs
    finally:
        if "chatbot" in namespace:
            namespace["chatbot"].close()
        mp.undo()


def test_the_document_holds_every_seed_snippet() -> None:
    assert list(seed_blocks()) == [
        "Basic Conversation", "Multi-Channel Integration", "Create Support Ticket",
        "Analytics Dashboard", "Custom Knowledge Base", "Custom System Prompt",
        "Channel-Specific Behavior"]
    assert all("from main import" not in code for code in seed_blocks().values())


def test_basic_conversation_answers_through_claude(
        session: tuple[dict[str, Any], dict[str, str]], claude: FakeClaudeServer) -> None:
    namespace, outputs = session
    printed = outputs["Basic Conversation"].strip().splitlines()
    assert len(printed) >= 2 and all(line.strip() for line in printed)
    assert namespace["response"]["decision"] in {"answer", "clarify", "escalate"}
    assert claude.requests and claude.requests[0].api_key == "your_api_key"
    conv = namespace["chatbot"]._store.conversations.get(namespace["conv_id"])
    assert (conv.user_id, conv.channel) == ("customer_123", "web")


def test_multi_channel_messages_open_one_conversation_per_customer_and_channel(
        session: tuple[dict[str, Any], dict[str, str]]) -> None:
    namespace, _ = session
    store = namespace["chatbot"]._store
    for user, channel in (("user_123", "web"), ("+1234567890", "sms"),
                          ("customer@example.com", "email")):
        convs = store.conversations.find(user_id=user)
        assert [c.channel for c in convs] == [channel]
    email = store.conversations.find(user_id="customer@example.com")[0]
    texts = [m.body for m in store.messages.for_conversation(email.id)]
    assert texts[0] == "Billing question\n\nI was charged twice for my subscription"
    # A second SMS from the same number continues that conversation.
    integration = namespace["integration"]
    again = asyncio.run(integration.handle_sms(phone_number="+1234567890",
                                               message="It was order 12345"))
    sms = store.conversations.find(user_id="+1234567890")
    assert len(sms) == 1 and again["conversation_id"] == sms[0].id
    assert again["channel"] == "sms"


def test_ticket_and_analytics_print_numbers(
        session: tuple[dict[str, Any], dict[str, str]]) -> None:
    namespace, outputs = session
    ticket_lines = outputs["Create Support Ticket"].splitlines()
    assert ticket_lines == [f"Ticket ID: {namespace['ticket'].ticket_id}", "Status: open"]
    analytics = namespace["analytics"]
    rate = analytics["ai_resolution_rate"]
    assert isinstance(rate, float) and not math.isnan(rate) and 0.0 <= rate <= 1.0
    assert analytics["total_conversations"] == 4
    assert analytics["channel_distribution"] == {"web": 2, "sms": 1, "email": 1}
    # the ticket escalated the first conversation: it is not an AI resolution
    assert rate <= 3 / 4
    assert outputs["Analytics Dashboard"].splitlines() == [
        "Total Conversations: 4", f"AI Resolution Rate: {rate:.2%}",
        f"Channel Distribution: {analytics['channel_distribution']}"]


def test_custom_article_is_a_dict_entry_the_next_answer_can_cite(
        session: tuple[dict[str, Any], dict[str, str]], claude: FakeClaudeServer) -> None:
    namespace, _ = session
    chatbot = namespace["chatbot"]
    articles = chatbot.knowledge_base.articles
    assert articles["custom_article"]["title"] == "How to Use Feature X"
    assert articles["custom_article"]["tags"] == ["feature", "tutorial", "guide"]
    assert "custom_article" in articles and "custom_article" in list(articles)
    conv_id = chatbot.create_conversation("u-feature", "web", "How to use Feature X?")
    reply = chatbot.get_response(conv_id)
    assert "custom_article" in [c["id"] for c in reply["citations"]]
    assert '<passage id="custom_article' in str(claude.last_request.body["messages"])
    count = len(articles)
    del articles["custom_article"]
    assert len(articles) == count - 1 and "custom_article" not in articles
    with pytest.raises(KeyError):
        articles["custom_article"]


def test_system_prompt_reaches_the_model(
        session: tuple[dict[str, Any], dict[str, str]], claude: FakeClaudeServer) -> None:
    namespace, _ = session
    chatbot = namespace["chatbot"]
    assert chatbot.system_prompt.startswith("\nYou are a customer service agent for [YOUR")
    conv_id = chatbot.create_conversation("u-prompt", "web", "How do I reset my password?")
    chatbot.get_response(conv_id)
    assert claude.last_request.body["system"][0]["text"] == chatbot.system_prompt.strip()


def test_channel_specific_behavior_snippet_defines_a_formatter(
        session: tuple[dict[str, Any], dict[str, str]]) -> None:
    namespace, _ = session
    fmt, channel = namespace["custom_format"], namespace["Channel"]
    assert fmt("Your order shipped.", channel.SMS) == (
        "Your order shipped.\n\n- YourCompany Support")
    assert fmt("Your order shipped.", channel.WEB) == "Your order shipped."
