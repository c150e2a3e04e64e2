"""``AICustomerServiceChatbot``: the Python API over the real services, on a tmp corpus."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import app
from app import AICustomerServiceChatbot, Channel, TicketPriority
from app.config import Settings
from app.errors import ValidationError
from tests.fakes.claude_server import Behaviour, FakeClaudeServer, meta_block

ARTICLES = {
    "kettle-care": ("Kettle care", {
        "Descaling": "Hard water leaves a chalky layer of limescale inside the kettle. Fill it "
        "halfway with equal parts white vinegar and water, bring it to the boil, then let it "
        "stand for thirty minutes. Pour the mixture away and rinse twice with clean water.",
        "Warranty": "Every kettle carries a two year warranty against defects in materials and "
        "workmanship. Keep your receipt, because we ask for the order number when you file a "
        "claim. Damage from dropping the kettle is not covered.",
    }),
    "lamp-pairing": ("Pair your smart lamp", {
        "Pairing": "Open the Lumen app, tap the plus button and choose Smart Lamp. Hold the "
        "lamp within two metres of your router while it blinks amber, then pick your home "
        "network and type its password.",
        "Five gigahertz networks": "The lamp only joins 2.4 GHz networks. Turn on the separate "
        "2.4 GHz band in the router settings while you pair the lamp.",
    }),
    "returns": ("Returns at a glance", {
        "Return window": "You can return most items within thirty days of delivery for a full "
        "refund to the original payment method. Start the return from your order page and "
        "print the prepaid label.",
    }),
}
PROMPT = "You are the support assistant for Kettles & Lamps. Answer briefly and kindly."


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True)
    for doc_id, (title, sections) in ARTICLES.items():
        body = "\n\n".join(f"## {head}\n\n{text}" for head, text in sections.items())
        (root / f"{doc_id}.md").write_text(
            f"---\nid: {doc_id}\ntitle: {title}\nurl: https://help.example.test/{doc_id}\n"
            f"category: help\nlocale: en-US\n---\n\n{body}\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("facade") / "corpus")


@pytest.fixture(scope="module")
def bot(corpus: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[AICustomerServiceChatbot]:
    chatbot = AICustomerServiceChatbot(api_key=None, data_dir=tmp_path_factory.mktemp("bot"),
                                       knowledge_path=corpus)
    yield chatbot
    chatbot.close()


def test_public_names_come_from_the_package() -> None:
    from app import facade

    assert (AICustomerServiceChatbot, Channel, TicketPriority) == (
        facade.AICustomerServiceChatbot, facade.Channel, facade.TicketPriority)
    assert TicketPriority.MEDIUM.value == "normal" and Channel.SMS.value == "sms"
    with pytest.raises(AttributeError):
        app.NotAThing  # noqa: B018


def test_corpus_is_ingested_on_first_use(bot: AICustomerServiceChatbot) -> None:
    assert len(bot.knowledge_base) >= 3
    assert bot.knowledge_base.search("limescale vinegar", k=1)[0].article_id == "kettle-care"


def test_conversation_answers_and_follow_ups(bot: AICustomerServiceChatbot) -> None:
    conv_id = bot.create_conversation("u-kettle", Channel.WEB, "How do I descale my kettle?")
    assert isinstance(conv_id, str) and conv_id
    first = bot.get_response(conv_id)
    assert first["conversation_id"] == conv_id and first["decision"] == "answer"
    assert "vinegar" in first["message"]
    assert [c["id"] for c in first["citations"]] == ["kettle-care"]
    assert first["citations"][0]["url"] == "https://help.example.test/kettle-care"
    follow = bot.get_response(conv_id, "and how long is the warranty on it?")
    assert follow["decision"] == "answer" and "two year warranty" in follow["message"]
    assert bot.get_response(conv_id)["message"] == follow["message"]  # the last reply again


def test_response_without_any_message_is_refused(bot: AICustomerServiceChatbot) -> None:
    conv_id = bot.create_conversation("u-quiet", "sms")
    with pytest.raises(ValidationError, match="pass a message"):
        bot.get_response(conv_id)


def test_human_request_escalates(bot: AICustomerServiceChatbot) -> None:
    conv_id = bot.create_conversation("u-human", Channel.WHATSAPP)
    reply = bot.get_response(conv_id, "let me talk to a person")
    assert (reply["decision"], reply["reason"]) == ("escalate", "explicit_request")
    ticket = bot.create_ticket(conv_id, "Wants a person", TicketPriority.HIGH)
    assert ticket.status == "open" and ticket.priority == "high"  # the escalation's ticket
    assert ticket.conversation_id == conv_id


def test_create_ticket(bot: AICustomerServiceChatbot) -> None:
    conv_id = bot.create_conversation("u-ticket", Channel.EMAIL, "My kettle leaks")
    ticket = bot.create_ticket(conv_id, "Kettle leaks", TicketPriority.MEDIUM)
    assert ticket.ticket_id and ticket.status == "open"
    assert (ticket.conversation_id, ticket.subject, ticket.priority) == (conv_id, "Kettle leaks",
                                                                         "normal")
    standalone = bot.create_ticket(None, "General question", "low")
    assert standalone.conversation_id is None and standalone.priority == "low"
    assert standalone.number > ticket.number


def test_analytics_counts_conversations_and_channels(bot: AICustomerServiceChatbot) -> None:
    before = bot.get_analytics()
    bot.create_conversation("u-a1", Channel.SMS, "How do I pair my lamp?")
    bot.create_conversation("u-a2", Channel.VOICE)
    after = bot.get_analytics()
    assert after["total_conversations"] == before["total_conversations"] + 2
    channels_before = before["channel_distribution"]
    assert after["channel_distribution"]["sms"] == channels_before.get("sms", 0) + 1
    assert after["channel_distribution"]["voice"] == channels_before.get("voice", 0) + 1
    assert "ai_resolution_rate" in after
    rate = after["ai_resolution_rate"]
    assert rate is None or 0.0 <= rate <= 1.0
    assert sum(after["channel_distribution"].values()) == after["total_conversations"]


def test_added_article_is_searchable_and_answerable(bot: AICustomerServiceChatbot) -> None:
    count = len(bot.knowledge_base)
    doc_id = bot.knowledge_base.add_article(
        "Gift wrapping",
        "## Gift wrapping\n\nWe gift wrap any order for $4.99. Tick Gift wrap at checkout and "
        "add a message for the card; the price is hidden on the packing slip.",
        category="orders", url="https://help.example.test/gift-wrapping")
    assert doc_id == "gift-wrapping"
    assert len(bot.knowledge_base) == count + 1
    assert bot.knowledge_base.search("gift wrap my order", k=1)[0].article_id == doc_id
    conv_id = bot.create_conversation("u-gift", Channel.WEB)
    reply = bot.get_response(conv_id, "Can you gift wrap my order?")
    assert reply["decision"] == "answer"
    assert [c["id"] for c in reply["citations"]] == [doc_id]
    assert "$4.99" in reply["message"]


def test_empty_article_is_refused(bot: AICustomerServiceChatbot) -> None:
    with pytest.raises(ValidationError, match="empty"):
        bot.knowledge_base.add_article("Nothing here", "   ")


def test_system_prompt_is_settable(bot: AICustomerServiceChatbot) -> None:
    assert "Lumen" in bot.system_prompt  # the variants file's prompt by default
    bot.system_prompt = PROMPT
    assert bot.system_prompt == PROMPT
    with pytest.raises(ValidationError, match="too short"):
        bot.system_prompt = "be nice"
    assert bot.system_prompt == PROMPT


def test_system_prompt_reaches_claude(corpus: Path,
                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    with FakeClaudeServer() as server:
        settings = Settings(_env_file=None, claude_base_url=server.url,  # type: ignore[call-arg]
                            claude_model="claude-test", claude_max_retries=0)
        chatbot = AICustomerServiceChatbot(api_key="sk-test", settings=settings,
                                           data_dir=tmp_path_factory.mktemp("claude-bot"),
                                           knowledge_path=corpus)
        try:
            chatbot.system_prompt = PROMPT
            server.enqueue(Behaviour.reply("Use equal parts vinegar and water."
                                           + meta_block(["kettle-care"])))
            conv_id = chatbot.create_conversation("u-claude", Channel.WEB,
                                                  "How do I descale my kettle?")
            reply = chatbot.get_response(conv_id)
        finally:
            chatbot.close()
    assert reply["message"] == "Use equal parts vinegar and water."
    assert [c["id"] for c in reply["citations"]] == ["kettle-care"]
    system = server.last_request.body["system"]
    assert system[0]["text"] == PROMPT
    assert server.last_request.api_key == "sk-test"


def test_articles_behave_like_a_dict_and_are_cited_at_once(
        bot: AICustomerServiceChatbot) -> None:
    articles = bot.knowledge_base.articles
    before = len(articles)
    assert "kettle-care" in articles and "custom_article" not in articles
    assert articles["kettle-care"]["title"] == "Kettle care"
    assert "limescale" in articles["kettle-care"]["content"]

    articles["custom_article"] = {
        "title": "Gift wrapping", "tags": ["gifts", "orders"],
        "content": "We gift-wrap any order for $4.99 per item; choose Gift wrap at checkout "
                   "and add a message card for free."}
    assert len(articles) == before + 1 and "custom_article" in list(articles)
    stored = articles["custom_article"]
    assert (stored["title"], stored["tags"]) == ("Gift wrapping", ["gifts", "orders"])
    assert stored["content"].startswith("We gift-wrap any order for $4.99")
    conv = bot.create_conversation("u-gift", Channel.WEB, "how much is gift wrapping?")
    reply = bot.get_response(conv)
    assert "custom_article" in [c["id"] for c in reply["citations"]]
    assert "$4.99" in reply["message"]

    articles["custom_article"] = {"title": "Gift wrapping", "content":
                                  "Gift wrapping is free on every order this month."}
    assert articles["custom_article"]["content"].startswith("Gift wrapping is free")
    assert len(articles) == before + 1  # replaced, not added

    del articles["custom_article"]
    assert "custom_article" not in articles and len(articles) == before
    assert "custom_article" not in [r.article_id for r in
                                    bot.knowledge_base.search("gift wrapping price", 5)]
    with pytest.raises(KeyError):
        del articles["custom_article"]
    with pytest.raises(KeyError):
        articles["never-there"]
    with pytest.raises(ValidationError, match="content"):
        articles["empty"] = {"title": "Nothing"}
