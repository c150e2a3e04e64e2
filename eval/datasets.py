"""Evaluation datasets: labelled cases from JSONL or CSV, or built from the store.

A case is one customer's problem: their turns (one or more messages), the gold article ids
that answer it, a reference answer, whether a human is needed (and why), and segment labels
(tier, channel, category, kind, persona, sentiment).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.errors import SourceError
from pipelines.loaders import iter_jsonl

KINDS = ("single", "multi", "out_of_scope", "ambiguous", "angry", "human_request")


@dataclass(frozen=True)
class EvalCase:
    """One labelled case."""

    id: str
    turns: list[str]
    gold_article_ids: list[str] = field(default_factory=list)
    reference_answer: str = ""
    needs_human: bool = False
    human_reason: str | None = None
    tier: int = 1
    kind: str = "single"
    persona: str = ""
    sentiment: str = "neutral"
    category: str = ""
    channel: str = "web"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _json_list(text: str, name: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"field '{name}' is not a valid JSON list ({e.msg})") from e
    if not isinstance(value, list):
        raise ValueError(f"field '{name}' must be a list")
    return value


def _as_list(value: Any, name: str = "gold_article_ids") -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in _json_list(text, name)]
    return [v.strip() for v in text.replace(";", ",").split(",") if v.strip()]


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "y")


def case_from_record(record: dict[str, Any], source: str, line: int) -> EvalCase:
    """Validate one record; errors name the file, line and field."""
    if not isinstance(record, dict):
        raise SourceError(source, "each case must be a JSON object", line)
    case_id = str(record.get("id") or "").strip()
    if not case_id:
        raise SourceError(source, "case has no 'id'", line)
    turns = record.get("turns")
    try:
        if isinstance(turns, str):
            turns = [t.strip() for t in turns.split("||")] if "||" in turns else (
                _json_list(turns, "turns") if turns.strip().startswith("[") else [turns])
        gold = _as_list(record.get("gold_article_ids"))
    except ValueError as e:
        raise SourceError(source, f"case '{case_id}': {e}", line) from e
    if not turns and record.get("question"):
        turns = [record["question"]]
    if not isinstance(turns, list) or not turns or \
            not all(isinstance(t, str) and t.strip() for t in turns):
        raise SourceError(source, f"case '{case_id}' needs 'turns': a list of customer "
                                  "messages (or 'question')", line)
    kind = str(record.get("kind") or ("multi" if len(turns) > 1 else "single"))
    if kind not in KINDS:
        raise SourceError(source, f"case '{case_id}' has kind '{kind}'; use one of "
                                  f"{', '.join(KINDS)}", line)
    return EvalCase(
        id=case_id, turns=[t.strip() for t in turns],
        gold_article_ids=gold,
        reference_answer=str(record.get("reference_answer") or ""),
        needs_human=_as_bool(record.get("needs_human", False)),
        human_reason=record.get("human_reason") or None,
        tier=int(record.get("tier") or 1), kind=kind, persona=str(record.get("persona") or ""),
        sentiment=str(record.get("sentiment") or "neutral"),
        category=str(record.get("category") or ""), channel=str(record.get("channel") or "web"),
    )


def load_cases(path: Path) -> list[EvalCase]:
    """Cases from a ``.jsonl`` or ``.csv`` file (CSV: turns joined by ``||`` or a JSON list;
    gold ids comma-separated). Duplicate ids are refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise SourceError(str(path), f"cannot read dataset: {e.strerror}") from e
    cases: list[tuple[int, EvalCase]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            cases.append((reader.line_num, case_from_record(dict(row), str(path),
                                                            reader.line_num)))
    else:
        cases += [(n, case_from_record(record, str(path), n))
                  for n, record in iter_jsonl(path)]
    seen: dict[str, int] = {}
    for n, case in cases:
        if case.id in seen:
            raise SourceError(str(path), f"duplicate case id '{case.id}' (first on line "
                                         f"{seen[case.id]})", n)
        seen[case.id] = n
    if not cases:
        raise SourceError(str(path), "dataset is empty")
    return [case for _, case in cases]


def cases_from_store(store: Any, start: datetime | None = None, end: datetime | None = None,
                     limit: int = 1000) -> list[EvalCase]:
    """Cases from real conversations the customer confirmed resolved: their messages are the
    turns, the articles the last answer cited are gold, and that answer is the reference."""
    cases = []
    conversations: list[Any] = []
    while len(conversations) < limit:  # the store pages at most 500 at a time
        page = store.conversations.find(limit=min(500, limit - len(conversations)),
                                        offset=len(conversations))
        conversations += page
        if not page:
            break
    for conv in conversations:
        if (start and conv.created_at < start) or (end and conv.created_at >= end):
            continue
        feedback = store.feedback.for_conversation(conv.id)
        if not any(f.resolved for f in feedback):
            continue
        messages = store.messages.for_conversation(conv.id)
        turns = [m.body for m in messages if m.role == "customer"]
        answers = [m for m in messages if m.role in ("assistant", "agent")]
        if not turns or not answers:
            continue
        last = answers[-1]
        escalated = any(m.reply is not None and m.reply.decision == "escalate" for m in answers)
        cases.append(EvalCase(
            id=f"store-{conv.id}", turns=turns,
            gold_article_ids=list(last.reply.cited_article_ids) if last.reply else [],
            reference_answer=last.body, needs_human=escalated or last.role == "agent",
            human_reason="unresolved" if escalated else None, tier=2 if escalated else 1,
            kind="multi" if len(turns) > 1 else "single", channel=conv.channel))
    return cases
