"""Chunking: heading-aware for Markdown, token-bounded, with the title carried into each chunk.

Pure functions: ``chunk_document`` takes a document and a token counter and returns chunks with
content-derived ids (an unchanged passage keeps its id across edits, so it is never re-embedded).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from pipelines.documents import SourceDocument

TokenCounter = Callable[[str], int]
_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


@dataclass(frozen=True)
class Chunk:
    """One indexed passage.

    ``text`` is the passage as shown to readers; ``embed_text`` is what the model and BM25 see
    (title and section path prepended, so a passage about "Steps" still knows its article).
    """

    id: str
    doc_id: str
    index: int
    section: str
    text: str
    embed_text: str


@dataclass(frozen=True)
class ChunkConfig:
    """Chunk size and overlap in model tokens."""

    chunk_tokens: int = 200
    overlap: int = 24
    # Folded into every chunk id: the embedding model and chunk settings, so changing either
    # gives every passage a new id and re-embeds it.
    salt: str = ""


@lru_cache(maxsize=4)
def tokenizer_counter(model_path: str) -> TokenCounter:
    """A token counter from the embedding model's ``tokenizer.json`` (no model load, no torch)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _sections(doc: SourceDocument) -> list[tuple[str, str]]:
    """(section path, body) pairs; Markdown split on headings, other text kept whole."""
    if doc.fmt != "markdown" or not re.search(r"^#{1,3}\s", doc.text, re.MULTILINE):
        return [("", doc.text)]
    splitter = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True)
    out: list[tuple[str, str]] = []
    for part in splitter.split_text(doc.text):
        heads = [str(part.metadata[k]) for _, k in _HEADERS if part.metadata.get(k)]
        # The article title is carried separately; an H1 equal to it adds nothing.
        if heads and heads[0].strip().lower() == doc.title.strip().lower():
            heads = heads[1:]
        body = part.page_content.strip()
        if body:
            out.append((" > ".join(heads), body))
    return out or [("", doc.text)]


def _merge_small(
    sections: list[tuple[str, str]], count: TokenCounter, limit: int
) -> list[tuple[str, str]]:
    """Join neighbouring short sections (their headings kept inline) up to ``limit`` tokens."""
    merged: list[tuple[str, str, int]] = []
    for path, body in sections:
        size = count(body)
        if merged and merged[-1][2] + size + 4 <= limit:
            prev_path, prev_body, prev_size = merged[-1]
            label = path.split(" > ")[-1] if path else ""
            joined = f"{prev_body}\n\n**{label}**\n{body}" if label else f"{prev_body}\n\n{body}"
            merged[-1] = (prev_path or path, joined, prev_size + size + 4)
        else:
            merged.append((path, body, size))
    return [(p, b) for p, b, _ in merged]


_LINK = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")


def embed_text_for(title: str, section: str, body: str) -> str:
    """What gets embedded and indexed lexically for one passage (link targets and emphasis
    marks dropped: they cost model tokens and carry no meaning)."""
    head = f"{title} — {section}" if section else title
    plain = _EMPHASIS.sub("", _LINK.sub(r"\1", body))
    return f"{head}\n{plain}"


def chunk_document(doc: SourceDocument, count: TokenCounter, config: ChunkConfig) -> list[Chunk]:
    """Split one document into chunks of at most ``config.chunk_tokens`` body tokens."""
    title_tokens = count(doc.title) + 8
    limit = max(32, config.chunk_tokens - title_tokens)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=limit, chunk_overlap=min(config.overlap, limit // 4),
        length_function=count, separators=_SEPARATORS, keep_separator="end",
    )
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for section, body in _merge_small(_sections(doc), count, limit):
        pieces = [body] if count(body) <= limit else splitter.split_text(body)
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            embed = embed_text_for(doc.title, section, piece)
            digest = hashlib.sha256((config.salt + embed).encode("utf-8")).hexdigest()[:16]
            n = seen.get(digest, 0)
            seen[digest] = n + 1
            chunk_id = f"{doc.id}::{digest}" + (f"-{n}" if n else "")
            chunks.append(Chunk(chunk_id, doc.id, len(chunks), section, piece, embed))
    return chunks
