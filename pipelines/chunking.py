"""Chunking: heading-aware for Markdown, token-bounded, with the title carried into each chunk.

Pure functions: ``chunk_document`` takes a document and a token counter and returns chunks with
content-derived ids (an unchanged passage keeps its id across edits, so it is never re-embedded).
A Markdown table split across chunks repeats its header row and separator row in each piece.
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


_TABLE_RULE_CELL = re.compile(r"\s*:?-{2,}:?\s*")


def _is_rule(line: str) -> bool:
    """A Markdown table's separator row (``| --- | :-: |``)."""
    cells = line.strip().removeprefix("|").removesuffix("|").split("|")
    return line.lstrip().startswith("|") and all(_TABLE_RULE_CELL.fullmatch(c) for c in cells)


@dataclass(frozen=True)
class _Table:
    """A Markdown table in a body: where it is, its header (header row and separator row)
    and its rows."""

    start: int
    end: int
    head: str
    rows: tuple[str, ...]


def _tables(body: str) -> list[_Table]:
    """The Markdown tables in ``body`` with at least one row under the header row and the
    separator row."""
    lines = body.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    tables: list[_Table] = []
    i = 0
    while i + 1 < len(lines):
        if not (lines[i].lstrip().startswith("|") and _is_rule(lines[i + 1])):
            i += 1
            continue
        n = i + 2
        while n < len(lines) and lines[n].lstrip().startswith("|"):
            n += 1
        if n == i + 2:  # a header without rows: nothing to repeat it over
            i = n
            continue
        head = f"{lines[i].strip()}\n{lines[i + 1].strip()}"
        rows = tuple(line.strip() for line in lines[i + 2:n])
        end = offsets[i] + len(body[offsets[i]:offsets[n]].rstrip())
        tables.append(_Table(offsets[i], end, head, rows))
        i = n
    return tables


def _gap(space: str) -> str:
    """The break between two parts, as the body had it: a blank line or a line end."""
    return "\n\n" if space.count("\n") > 1 else "\n"


class _Packer:
    """Pieces of at most ``limit`` tokens, filled front to back."""

    def __init__(self, count: TokenCounter, limit: int, split: Callable[[str], list[str]]):
        self.count, self.limit, self.split = count, limit, split
        self.pieces: list[str] = []
        self.cur = ""

    def join(self, part: str, gap: str) -> bool:
        """Add ``part`` to the current piece if it fits."""
        joined = f"{self.cur}{gap}{part}" if self.cur else part
        if self.count(joined) > self.limit:
            return False
        self.cur = joined
        return True

    def start(self, part: str) -> None:
        """Close the current piece and begin another with ``part``."""
        if self.cur.strip():
            self.pieces.append(self.cur)
        self.cur = part

    def text(self, raw: str) -> None:
        """Text between tables, split as the splitter does; only its first piece may join the
        piece before (later ones open with the splitter's overlap: joined, it is said twice)."""
        if not (text := raw.strip()):
            return
        first, *rest = self.split(text) if self.count(text) > self.limit else [text]
        if not self.join(first, _gap(raw[:len(raw) - len(raw.lstrip())])):
            self.start(first)
        for piece in rest:
            self.start(piece)

    def table(self, table: _Table, gap: str) -> None:
        """A table's rows, whole, each piece opening with the header and separator rows (the
        first may join the text before it)."""
        for n, row in enumerate(table.rows):
            if n and self.join(row, "\n"):
                continue
            part = f"{table.head}\n{row}"
            if not (n == 0 and self.join(part, gap)):
                self.start(part)


def _pack_with_headers(body: str, tables: list[_Table], count: TokenCounter, limit: int,
                       split: Callable[[str], list[str]]) -> list[str]:
    """``body`` in pieces of at most ``limit`` tokens, the pieces of each table in ``tables``
    opening with its header row and separator row."""
    packer = _Packer(count, limit, split)
    pos = 0
    for table in tables:
        raw = body[pos:table.start]
        packer.text(raw)
        packer.table(table, _gap(raw[len(raw.rstrip()):]))
        pos = table.end
    packer.text(body[pos:])
    packer.start("")
    return packer.pieces


def _split_body(body: str, count: TokenCounter, limit: int,
                split: Callable[[str], list[str]]) -> list[str]:
    """``body`` in pieces of at most ``limit`` tokens. A body whose tables all land whole in
    one piece is split exactly as before (its chunk ids don't change); otherwise each piece
    of a split table repeats the table's header row and separator row, and no row is split.
    A table with a row that does not fit under its header (a header alone over the budget,
    say) is split as before."""
    if count(body) <= limit:
        return [body]
    pieces = split(body)
    tables = _tables(body)
    split_tables = [t for t in tables if not any(body[t.start:t.end] in p for p in pieces)
                    and all(count(f"{t.head}\n{row}") <= limit for row in t.rows)]
    if not split_tables:
        return pieces
    return _pack_with_headers(body, split_tables, count, limit, split)


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
        pieces = _split_body(body, count, limit, splitter.split_text)
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
