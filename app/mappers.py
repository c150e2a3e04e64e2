"""The reply record mapped to the shapes around it: the message row, the API, the evaluation row
and the facade dict. Small pure functions; adding a reply field means ``app.domain.Reply``,
these mappers and a migration (the column), nothing else.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.domain import Citation, Decision, Reply, Usage

# ---- the database row ---------------------------------------------------------------------

#: message columns that hold a reply (besides ``body``, which is the reply's text)
REPLY_COLUMNS: tuple[str, ...] = (
    "decision", "reason", "priority", "citations", "cited_article_ids", "retrieval_scores",
    "confidence", "latency_ms", "provider", "model", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_creation_tokens", "variant", "fallback_from", "detail", "query",
    "reply_sentiment",
)


def reply_to_columns(reply: Reply) -> dict[str, Any]:
    """The message-row columns for ``reply`` (the text goes to ``body`` separately)."""
    usage = reply.usage
    return {
        "decision": str(reply.decision), "reason": reply.reason,
        "priority": str(reply.priority) if reply.priority else None,
        "citations": [{"id": c.id, "title": c.title, "url": c.url} for c in reply.citations],
        "cited_article_ids": reply.cited_article_ids,
        "retrieval_scores": list(reply.retrieval), "confidence": reply.confidence,
        "latency_ms": reply.latency_ms, "provider": reply.provider or None,
        "model": reply.model or None,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "cache_read_tokens": usage.cache_read_input_tokens if usage else None,
        "cache_creation_tokens": usage.cache_creation_input_tokens if usage else None,
        "variant": reply.variant or None, "fallback_from": reply.fallback_from,
        "detail": reply.detail or None, "query": reply.query or None,
        "reply_sentiment": reply.sentiment,
    }


def reply_from_columns(text: str, columns: dict[str, Any]) -> Reply | None:
    """The stored reply of a message row (``None`` for messages that are not replies).

    Rows written before citations were stored keep their cited ids (without titles)."""
    if columns.get("decision") is None:
        return None
    stored = columns.get("citations")
    citations = ([Citation(str(c.get("id")), str(c.get("title") or ""), str(c.get("url") or ""))
                  for c in stored if isinstance(c, dict)] if stored
                 else [Citation(str(i)) for i in columns.get("cited_article_ids") or []])
    tokens = [columns.get(k) for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                       "cache_creation_tokens")]
    usage = Usage(*(int(t or 0) for t in tokens)) if any(t is not None for t in tokens) else None
    scores = columns.get("retrieval_scores")
    return Reply(
        text=text, decision=columns["decision"], reason=columns.get("reason"),
        priority=columns.get("priority") or "normal", variant=columns.get("variant") or "",
        confidence=float(columns.get("confidence") or 0.0), citations=citations,
        retrieval=list(scores) if isinstance(scores, list) else [],
        provider=columns.get("provider") or "", model=columns.get("model") or "",
        latency_ms=float(columns.get("latency_ms") or 0.0),
        sentiment=float(columns.get("reply_sentiment") or 0.0),
        query=columns.get("query") or "", usage=usage,
        fallback_from=columns.get("fallback_from"), detail=columns.get("detail") or "")


# ---- the API ------------------------------------------------------------------------------

class CitationOut(BaseModel):
    id: str
    title: str
    url: str


class ReplyOut(BaseModel):
    """The assistant's reply to one customer message."""

    message: str
    decision: Decision
    reason: str | None
    citations: list[CitationOut]
    confidence: float
    variant: str
    provider: str
    model: str
    latency_ms: float
    fallback_from: str | None = None


def reply_to_api(reply: Reply) -> ReplyOut:
    return ReplyOut(
        message=reply.text, decision=Decision(reply.decision), reason=reply.reason,
        citations=[CitationOut(id=c.id, title=c.title, url=c.url) for c in reply.citations],
        confidence=round(reply.confidence, 4), variant=reply.variant, provider=reply.provider,
        model=reply.model, latency_ms=round(reply.latency_ms, 2),
        fallback_from=reply.fallback_from)


# ---- the evaluation row and the facade ------------------------------------------------------

def reply_to_eval(reply: Reply) -> dict[str, Any]:
    """The reply's columns of an evaluation row (``eval.runner`` adds the case's own)."""
    return {
        "answer": reply.text, "decision": str(reply.decision),
        "cited_article_ids": reply.cited_article_ids,
        "retrieved_ids": [str(r["id"]) for r in reply.retrieval
                          if r.get("collection") == "articles"],
        "contexts": [p.text for p in reply.passages], "confidence": float(reply.confidence),
        "provider": reply.provider, "model": reply.model, "fallback_from": reply.fallback_from,
    }


def reply_to_facade(reply: Reply, conversation_id: str) -> dict[str, Any]:
    """What ``AICustomerServiceChatbot.get_response`` returns."""
    return {"message": reply.text, "decision": str(reply.decision), "reason": reply.reason,
            "citations": [{"id": c.id, "title": c.title, "url": c.url} for c in reply.citations],
            "confidence": reply.confidence, "variant": reply.variant,
            "conversation_id": conversation_id}
