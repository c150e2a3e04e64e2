"""Past conversation records (``knowledge/conversations/*.jsonl``): loading and what they say.

One record per line: ``conversation_id``, ``channel``, ``created_at``, ``status`` (resolved,
abandoned, open), ``resolution`` (ai_resolved, agent_resolved, null), ``tier``, ``csat``, ``tags``,
``article_ids`` and ``turns`` (``{"role": "customer" | "assistant" | "agent", "text": ...}``).
The CSAT proxy (``eval.metrics.csat``) fits on them and the demo seeder (``app.demo``) replays
them into the store; both read them, and the definitions below, from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.errors import SourceError
from pipelines.loaders import iter_jsonl

CONVERSATIONS_DIR = Path(__file__).resolve().parents[1] / "knowledge" / "conversations"


def load_conversations(paths: Iterable[Path | str]) -> list[dict[str, Any]]:
    """Conversation records from JSONL files (a directory means its ``*.jsonl``, sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.glob("*.jsonl")) if p.is_dir() else [p])
    records = []
    for path in files:
        for n, record in iter_jsonl(path):
            if not isinstance(record, dict) or not isinstance(record.get("turns"), list):
                raise SourceError(str(path), "each line needs an object with a 'turns' list", n)
            records.append(record)
    return records


def customer_texts(record: Mapping[str, Any]) -> list[str]:
    """The customer's messages, oldest first."""
    return [str(t.get("text", "")) for t in record.get("turns", [])
            if t.get("role") == "customer"]


def is_escalated(record: Mapping[str, Any]) -> bool:
    """Handed to a person: resolved by an agent, or a tier-2 conversation."""
    return record.get("resolution") == "agent_resolved" or str(record.get("tier")) == "2"
