"""Loaders: one function per format, each turning a file into ``SourceDocument``s.

Bad records never stop a run: a loader yields a ``SourceError`` naming the file and line, and
the ingester reports it and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from app.errors import SourceError
from pipelines.documents import SourceDocument

Loaded = SourceDocument | SourceError

MARKDOWN_EXT = {".md", ".markdown"}
HTML_EXT = {".html", ".htm"}
JSON_EXT = {".json"}
JSONL_EXT = {".jsonl", ".ndjson"}
CSV_EXT = {".csv"}
TEXT_EXT = {".txt"}
SUPPORTED_EXT = MARKDOWN_EXT | HTML_EXT | JSON_EXT | JSONL_EXT | CSV_EXT | TEXT_EXT

DEFAULT_ID_FIELDS = ("id", "article_id", "conversation_id", "doc_id", "_id", "slug")
DEFAULT_TITLE_FIELDS = ("title", "name", "subject", "question")
DEFAULT_TEXT_FIELDS = ("text", "body", "content", "markdown", "html", "answer")
DEFAULT_URL_FIELDS = ("url", "link", "html_url", "permalink")
META_FIELDS = ("category", "locale", "tags", "updated_at", "section", "channel")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class FieldMap:
    """Which record fields hold the id, title, text and url (``None``: try the usual names)."""

    id_field: str | None = None
    title_field: str | None = None
    text_field: str | None = None
    url_field: str | None = None


def _clean_meta(raw: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in META_FIELDS:
        value = raw.get(key)
        if value is None or value == "":
            continue
        if key == "tags":
            if isinstance(value, str):
                value = [t.strip() for t in value.replace(";", ",").split(",") if t.strip()]
            value = [str(t) for t in value]
        else:
            value = str(value)
        meta[key] = value
    return meta


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: spreadsheet exports and some editors start files with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(str(path), f"not UTF-8 text ({e.reason}); re-save it as UTF-8") from e
    except OSError as e:
        raise SourceError(str(path), f"cannot read file: {e.strerror}") from e


def load_markdown(path: Path) -> Iterator[Loaded]:
    """A Markdown file with optional YAML front matter (``id`` defaults to the file name)."""
    text = _read_text(path)
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1  # +1 for '---', +1 for 1-based
            problem = getattr(e, "problem", None) or str(e)
            yield SourceError(str(path), f"invalid YAML front matter: {problem}", line=line)
            return
        if not isinstance(loaded, dict):
            yield SourceError(str(path), "front matter must be a YAML mapping", line=1)
            return
        meta = loaded
        text = text[match.end():]
    body = text.strip()
    title = str(meta.get("title") or "")
    if not title:
        heading = re.search(r"^#\s+(.+)$", body, re.MULTILINE)
        title = heading.group(1).strip() if heading else ""
    doc_id = str(meta.get("id") or path.stem)
    if not body:
        yield SourceError(str(path), "document is empty: add body text below the front matter")
        return
    yield SourceDocument(
        id=doc_id, text=body, title=title, url=str(meta.get("url") or ""),
        source=str(path), fmt="markdown", metadata=_clean_meta(meta),
    )


def load_text(path: Path) -> Iterator[Loaded]:
    """A plain-text file: the id is the file name, the first line the title."""
    body = _read_text(path).strip()
    if not body:
        yield SourceError(str(path), "document is empty")
        return
    first = body.splitlines()[0].strip()
    yield SourceDocument(id=path.stem, text=body, title=first[:200], source=str(path), fmt="text")


def load_html(path: Path) -> Iterator[Loaded]:
    """An HTML article page: the article body only (no navigation, header, footer, scripts)."""
    from pipelines.html import html_to_document

    try:
        doc = html_to_document(_read_text(path), default_id=path.stem)
    except ValueError as e:
        yield SourceError(str(path), str(e))
        return
    doc.source = str(path)
    yield doc


def _pick(record: dict[str, Any], explicit: str | None, defaults: Iterable[str]) -> Any:
    if explicit is not None:
        return record.get(explicit)
    for name in defaults:
        if record.get(name) not in (None, ""):
            return record[name]
    return None


def _conversation_text(turns: list[Any]) -> str:
    lines = []
    for turn in turns:
        if not isinstance(turn, dict):
            continue
        role = str(turn.get("role") or "customer").lower()
        who = {"customer": "Customer", "user": "Customer", "assistant": "Assistant",
               "bot": "Assistant", "agent": "Agent"}.get(role, role.title())
        text = str(turn.get("text") or turn.get("content") or "").strip()
        if text:
            lines.append(f"{who}: {text}")
    return "\n".join(lines)


def record_to_document(
    record: Any, fields: FieldMap, source: str, line: int | None
) -> Loaded:
    """Map one JSON/CSV record to a document, or say exactly which field is missing."""
    if not isinstance(record, dict):
        return SourceError(source, f"expected a JSON object, got {type(record).__name__}", line)
    doc_id = _pick(record, fields.id_field, DEFAULT_ID_FIELDS)
    if doc_id in (None, ""):
        wanted = fields.id_field or "/".join(DEFAULT_ID_FIELDS[:4])
        return SourceError(source, f"missing id field '{wanted}' (set it with --id-field)", line)
    turns = record.get("turns") or record.get("messages")
    if fields.text_field is None and isinstance(turns, list):
        text = _conversation_text(turns)
        fmt = "text"
    else:
        text = _pick(record, fields.text_field, DEFAULT_TEXT_FIELDS)
        fmt = "markdown"
        if isinstance(text, str) and re.search(r"<(p|div|h[1-6]|ul|ol|br)\b", text, re.I):
            from pipelines.html import html_fragment_to_text

            text = html_fragment_to_text(text)
    if text is None:
        wanted = fields.text_field or "/".join(DEFAULT_TEXT_FIELDS[:4])
        return SourceError(
            source, f"record '{doc_id}' has no text field '{wanted}' (set it with --text-field)",
            line,
        )
    text = str(text).strip()
    if not text:
        return SourceError(source, f"record '{doc_id}' has empty text", line)
    title = _pick(record, fields.title_field, DEFAULT_TITLE_FIELDS)
    url = _pick(record, fields.url_field, DEFAULT_URL_FIELDS)
    meta = _clean_meta(record)
    for key in ("status", "resolution", "csat", "tier"):
        if record.get(key) not in (None, ""):
            meta[key] = record[key]
    if isinstance(record.get("article_ids"), list):
        meta["article_ids"] = [str(a) for a in record["article_ids"]]
    return SourceDocument(
        id=str(doc_id), text=text, title=str(title or ""), url=str(url or ""),
        source=source, line=line, fmt=fmt, metadata=meta,
    )


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSON Lines file; a malformed line
    raises ``SourceError`` naming the file and line (for eval sets and query files, where one
    bad line should stop the run rather than be skipped)."""
    for number, raw in enumerate(_read_text(path).split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as e:
            raise SourceError(str(path), f"malformed JSON ({e.msg})", number) from e


def load_jsonl(path: Path, fields: FieldMap) -> Iterator[Loaded]:
    """JSON Lines: one record per line; a malformed line is reported with its number."""
    text = _read_text(path)
    # Only "\n" ends a JSON Lines record: str.splitlines() would also split on U+2028 and
    # friends, which are legal inside JSON strings.
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.rstrip("\r")
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            yield SourceError(str(path), f"malformed JSON ({e.msg} at column {e.colno})", number)
            continue
        yield record_to_document(record, fields, str(path), number)


def load_json(path: Path, fields: FieldMap) -> Iterator[Loaded]:
    """A JSON file: a list of records, one record, or ``{"articles"|"data"|"items": [...]}``."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        yield SourceError(str(path), f"malformed JSON ({e.msg})", e.lineno)
        return
    if isinstance(data, dict):
        for key in ("articles", "data", "items", "documents", "conversations"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    records = data if isinstance(data, list) else [data]
    for number, record in enumerate(records, start=1):
        # ``line`` is the record's position in the list for JSON files.
        yield record_to_document(record, fields, str(path), number)


def load_csv(path: Path, fields: FieldMap) -> Iterator[Loaded]:
    """CSV with a header row; rows are reported by their line number in the file."""
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))  # keeps newlines in quoted fields
    if not reader.fieldnames:
        yield SourceError(str(path), "CSV file has no header row")
        return
    for row in reader:
        record = {k.strip(): v for k, v in row.items() if k is not None}
        yield record_to_document(record, fields, str(path), reader.line_num)


def loader_for(path: Path, fields: FieldMap) -> Callable[[], Iterator[Loaded]] | None:
    """The loader for a file, by extension, or ``None`` if the format is not supported."""
    ext = path.suffix.lower()
    if ext in MARKDOWN_EXT:
        return lambda: load_markdown(path)
    if ext in HTML_EXT:
        return lambda: load_html(path)
    if ext in JSONL_EXT:
        return lambda: load_jsonl(path, fields)
    if ext in JSON_EXT:
        return lambda: load_json(path, fields)
    if ext in CSV_EXT:
        return lambda: load_csv(path, fields)
    if ext in TEXT_EXT:
        return lambda: load_text(path)
    return None


def load_file(path: Path, fields: FieldMap = FieldMap()) -> Iterator[Loaded]:
    """Every document (or error) in one file; unreadable files yield one error."""
    loader = loader_for(path, fields)
    if loader is None:
        yield SourceError(
            str(path),
            f"unsupported file type '{path.suffix}' "
            f"(supported: {', '.join(sorted(SUPPORTED_EXT))})",
        )
        return
    try:
        yield from loader()
    except SourceError as e:
        yield e


def walk_with_errors(path: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """Supported files under ``path`` (recursively, sorted; hidden entries skipped), and the
    directories that could not be read, with the reason (so their documents are not pruned)."""
    if path.is_file():
        return [path], []
    failed: list[tuple[str, str]] = []

    def onerror(e: OSError) -> None:
        failed.append((str(e.filename or path), e.strerror or str(e)))

    found = []
    for root, dirs, files in os.walk(path, onerror=onerror):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files
                  if not f.startswith(".") and Path(f).suffix.lower() in SUPPORTED_EXT]
    return sorted(found), failed


def walk(path: Path) -> list[Path]:
    """Supported files under ``path`` (recursively, sorted; hidden entries skipped)."""
    return walk_with_errors(path)[0]
