"""``AICustomerServiceChatbot``: the seed's Python API, a thin facade over the real services.

Example:
    >>> from app import AICustomerServiceChatbot, Channel, TicketPriority
    >>> bot = AICustomerServiceChatbot(api_key=None)          # offline extractive answers
    >>> conv_id = bot.create_conversation("u1", Channel.WEB, "Where is my order?")
    >>> bot.get_response(conv_id)["message"]
    >>> ticket = bot.create_ticket(conv_id, "Order never arrived", TicketPriority.HIGH)
    >>> bot.get_analytics()["total_conversations"]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.container import build, knowledge
from app.domain import Channel, ConversationStatus, Priority, Reason, Reply, Role
from app.errors import ValidationError
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever, SearchResult
from app.mappers import reply_to_facade
from app.services.analytics import analytics

__all__ = ["AICustomerServiceChatbot", "Channel", "MultiChannelIntegration", "Ticket",
           "TicketPriority"]

ROOT = Path(__file__).resolve().parents[1]


#: the seed's name for ticket priorities (``TicketPriority.MEDIUM`` is ``NORMAL``)
TicketPriority = Priority


@dataclass(frozen=True)
class Ticket:
    """A ticket as the facade returns it."""

    ticket_id: str
    number: int
    conversation_id: str | None
    subject: str
    priority: str
    status: str


class Articles(MutableMapping[str, dict[str, Any]]):
    """The indexed articles as a dict: ``articles[id] = {"title", "content", "tags"?,
    "category"?, "url"?}`` adds (or replaces) an article, searchable and citable at once;
    reading, ``del``, ``len``, ``in`` and iteration work as on a dict.

    Example:
        >>> bot.knowledge_base.articles["gift-wrap"] = {
        ...     "title": "Gift wrapping", "content": "We gift-wrap for $4.99 …", "tags": ["gifts"]}
        >>> bot.knowledge_base.articles["gift-wrap"]["title"]
        'Gift wrapping'
    """

    def __init__(self, owner: KnowledgeBaseFacade) -> None:
        self._owner = owner

    def _doc(self, article_id: str) -> Any:
        return self._owner._kb.manifest.documents("articles").get(("articles", article_id))

    def __getitem__(self, article_id: str) -> dict[str, Any]:
        doc = self._doc(article_id)
        if doc is None:
            raise KeyError(article_id)
        content = doc.metadata.get("content") or "\n\n".join(
            self._owner._retriever.article_texts(article_id))
        return {"title": doc.title, "content": content, "tags": list(doc.metadata.get("tags")
                                                                      or []),
                "category": doc.metadata.get("category"), "url": doc.url}

    def __setitem__(self, article_id: str, article: Mapping[str, Any]) -> None:
        if not isinstance(article, Mapping) or not str(article.get("content") or "").strip():
            raise ValidationError(
                f"articles[{article_id!r}] needs a dict with a non-empty 'content' (and a "
                "'title'; 'tags', 'category' and 'url' are optional)")
        tags = article.get("tags")
        self._owner.add_article(str(article.get("title") or article_id),
                                str(article["content"]), article.get("category"),
                                article_id=article_id, url=str(article.get("url") or ""),
                                tags=[str(t) for t in tags] if tags else None)

    def __delitem__(self, article_id: str) -> None:
        if self._doc(article_id) is None:
            raise KeyError(article_id)
        with self._owner._kb.writer() as writer:
            writer.delete("articles", [article_id])

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(doc_id for _, doc_id in self._owner._kb.manifest.documents(
            "articles")))

    def __len__(self) -> int:
        return len(self._owner._kb.manifest.documents("articles"))


class KnowledgeBaseFacade:
    """The chatbot's knowledge base: ``articles`` (a dict of the indexed articles),
    ``add_article`` and ``search``."""

    def __init__(self, kb: KnowledgeBase, retriever: HybridRetriever) -> None:
        self._kb = kb
        self._retriever = retriever
        self.articles = Articles(self)

    def add_article(self, title: str, content: str, category: str | None = None,
                    article_id: str | None = None, url: str = "",
                    tags: list[str] | None = None) -> str:
        """Index one article; returns its id (derived from the title when not given)."""
        from pipelines.documents import SourceDocument
        from pipelines.ingest import Ingester

        if not content.strip():
            raise ValidationError("article content is empty")
        doc_id = article_id or re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "article"
        meta: dict[str, Any] = {"locale": "en", "content": content}
        if category:
            meta["category"] = category
        if tags:
            meta["tags"] = list(tags)
        doc = SourceDocument(id=doc_id, text=content, title=title, url=url, metadata=meta)
        report = Ingester(self._kb, progress=False).add_documents([doc], "articles")
        if report.failed:
            raise ValidationError(f"could not index article {doc_id!r}: {report.errors}")
        return doc_id

    def search(self, query: str, k: int = 5) -> list[SearchResult]:
        return self._retriever.search(query, k)

    def __len__(self) -> int:
        return self._kb.manifest.counts().get("articles", {}).get("documents", 0)


class AICustomerServiceChatbot:
    """Conversations, answers, tickets and analytics in one object.

    Args:
        api_key: an Anthropic key for Claude answers; ``None`` uses the offline responder.
        data_dir: where the index and database live (default: ``SUPPORTBOT_DATA_DIR``).
        knowledge_path: ingested on first use when the knowledge base is empty.
    """

    def __init__(self, api_key: str | None = None, data_dir: str | Path | None = None,
                 knowledge_path: str | Path | None = ROOT / "knowledge",
                 settings: Settings | None = None) -> None:
        base = settings or Settings()
        updates: dict[str, Any] = {"anthropic_api_key": api_key}
        if data_dir is not None:
            updates["data_dir"] = Path(data_dir)
        self.settings = base.model_copy(update=updates)
        kb = knowledge(self.settings).kb
        if knowledge_path and not kb.manifest.counts().get("articles"):
            from pipelines.ingest import Ingester

            Ingester(kb, progress=False).run([Path(knowledge_path)])
        self._engine = build(self.settings, kb=kb)
        self._store = self._engine.store
        self._service = self._engine.conversations
        self.knowledge_base = KnowledgeBaseFacade(kb, self._engine.retriever)
        self._last: dict[str, Reply] = {}

    @property
    def system_prompt(self) -> str:
        """The system prompt of the first variant (setting it applies to every variant)."""
        return self._service.variants.variants[0].system_prompt

    @system_prompt.setter
    def system_prompt(self, prompt: str) -> None:
        if len(prompt.strip()) < 20:
            raise ValidationError("system_prompt is too short to guide the assistant")
        config = self._service.variants
        self._service.variants = config.model_copy(update={"variants": tuple(
            v.model_copy(update={"system_prompt": prompt}) for v in config.variants)})

    def create_conversation(self, user_id: str, channel: Channel | str = Channel.WEB,
                            initial_message: str | None = None) -> str:
        """Start a conversation; returns its id (the initial message is answered now)."""
        conv, turn = self._service.start(user_id, Channel(channel).value, initial_message)
        if turn is not None:
            self._last[conv.id] = turn.reply
        return conv.id

    def get_response(self, conversation_id: str, message: str | None = None) -> dict[str, Any]:
        """Answer ``message`` (or return the reply to the last one) as a dict with ``message``."""
        if message is not None:
            self._last[conversation_id] = self._service.post(conversation_id, message).reply
        reply = self._last.get(conversation_id)
        if reply is None:
            messages = self._store.messages.for_conversation(conversation_id)
            reply = next((m.reply for m in reversed(messages)
                          if m.role == Role.ASSISTANT and m.reply is not None), None)
            if reply is None:
                raise ValidationError("nothing to respond to yet: pass a message")
        return reply_to_facade(reply, conversation_id)

    def create_ticket(self, conversation_id: str | None, subject: str,
                      priority: TicketPriority | str = TicketPriority.NORMAL) -> Ticket:
        """Open a ticket for a conversation (or update its open one)."""
        level = TicketPriority(priority).value
        if conversation_id is None:
            rec = self._store.tickets.create(subject, priority=level)
        else:
            rec, _ = self._store.tickets.escalate(conversation_id, subject=subject,
                                                  priority=level, reason_code=Reason.MANUAL)
        return Ticket(rec.id, rec.number, rec.conversation_id, rec.subject, rec.priority,
                      rec.status)

    def get_analytics(self) -> dict[str, Any]:
        """Totals, AI resolution rate, channel distribution, CSAT, per variant (the HTTP
        report; definitions under ``"definitions"``). ``ai_resolution_rate`` is always a float,
        so the seed's ``f"{analytics['ai_resolution_rate']:.2%}"`` formats: NaN ("nan%") before
        any customer has written, never a made-up 0 %."""
        report = analytics(self._store,
                           window_hours=self.settings.soft_resolution_window_hours)
        if report["ai_resolution_rate"] is None:
            report["ai_resolution_rate"] = math.nan
        return report

    def close(self) -> None:
        self._engine.close()


class MultiChannelIntegration:
    """The seed's channel entry points over one chatbot: each message joins the customer's
    ongoing conversation on that channel (the newest one not resolved or closed, keyed by the
    web user id, the phone number or the email address) or starts one, and goes through the
    same turn path as every other entry point. Returns the reply as ``get_response`` does, with
    the ``channel`` and the customer's address.

    The HTTP channel adapters (Twilio webhooks, inbound email, Meta, X) receive and deliver;
    these methods are for code that already has the message in hand.

    Example:
        >>> integration = MultiChannelIntegration(chatbot)
        >>> await integration.handle_sms(phone_number="+1234567890", message="Where is my order?")
    """

    def __init__(self, chatbot: AICustomerServiceChatbot) -> None:
        self.chatbot = chatbot

    async def handle_web_chat(self, user_id: str, message: str) -> dict[str, Any]:
        return await self._handle(Channel.WEB, user_id, message)

    async def handle_sms(self, phone_number: str, message: str) -> dict[str, Any]:
        return await self._handle(Channel.SMS, phone_number, message)

    async def handle_email(self, email_address: str, subject: str, body: str) -> dict[str, Any]:
        """The subject leads the message unless the body already says it."""
        subject, body = subject.strip(), body.strip()
        text = body if not subject or subject.lower() in body.lower() else f"{subject}\n\n{body}"
        return await self._handle(Channel.EMAIL, email_address, text)

    async def _handle(self, channel: Channel, address: str, message: str) -> dict[str, Any]:
        import asyncio

        if not str(address).strip():
            raise ValidationError(f"{channel.value}: the customer's address is empty")
        return await asyncio.to_thread(self._turn, channel, str(address).strip(), message)

    def _turn(self, channel: Channel, address: str, message: str) -> dict[str, Any]:
        bot = self.chatbot
        ongoing = next((c for c in bot._store.conversations.find(user_id=address, limit=20)
                        if c.channel == channel.value
                        and c.status in (ConversationStatus.OPEN, ConversationStatus.ESCALATED)),
                       None)
        if ongoing is None:
            conv_id = bot.create_conversation(address, channel, message)
            reply = bot.get_response(conv_id)
        else:
            reply = bot.get_response(ongoing.id, message)
        return {**reply, "channel": channel.value, "address": address}
