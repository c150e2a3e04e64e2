"""The record every loader produces and every later stage consumes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SourceDocument:
    """One document read from a source, before chunking.

    Args:
        id: stable identifier (article id or conversation id).
        text: body text; Markdown keeps its headings so chunking can follow them.
        title: display title (falls back to ``id``).
        url: canonical link, may be empty.
        source: file the document came from.
        line: 1-based record line/row in ``source`` for JSONL/CSV.
        fmt: ``markdown`` (heading-aware chunking) or ``text``.
        metadata: category, locale, tags, updated_at and any extra scalar fields.
    """

    id: str
    text: str
    title: str = ""
    url: str = ""
    source: str = ""
    line: int | None = None
    fmt: str = "markdown"
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = str(self.id).strip()
        self.title = (self.title or "").strip() or self.id

    def content_hash(self) -> str:
        """Hash of everything that affects what is indexed (text, title, url, metadata)."""
        payload = json.dumps(
            [self.id, self.title, self.url, self.fmt, self.text, self.metadata],
            sort_keys=True, default=str, ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()
