"""Past conversation records: loading, and who handled them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.errors import SourceError
from pipelines.conversations import (
    CONVERSATIONS_DIR,
    customer_texts,
    is_escalated,
    load_conversations,
)
from tests.conftest import conversation_record


def test_load_conversations_reads_dirs_and_names_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps(conversation_record()) + "\n\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps(conversation_record(conversation_id="c2")) + "\n",
                                      encoding="utf-8")
    assert [c["conversation_id"] for c in load_conversations([tmp_path])] == ["c1", "c2"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(conversation_record()) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad\.jsonl:2"):
        load_conversations([bad])


def test_the_shipped_history_loads() -> None:
    records = load_conversations([CONVERSATIONS_DIR])
    assert len(records) == 230
    assert all(r["turns"] and r["conversation_id"] for r in records)


def test_customer_texts_are_the_customers_messages_in_order() -> None:
    assert customer_texts(conversation_record()) == ["my order is late and nobody answers",
                                               "Great, thank you so much!"]
    assert customer_texts({"turns": []}) == []


@pytest.mark.parametrize(("overrides", "escalated"), [
    ({}, False),
    ({"resolution": "agent_resolved"}, True),
    ({"tier": 2}, True),
    ({"tier": "2", "resolution": None}, True),
    ({"status": "abandoned", "resolution": None}, False),
])
def test_escalated_means_an_agent_resolved_it_or_tier_2(overrides: dict[str, Any],
                                                        escalated: bool) -> None:
    assert is_escalated(conversation_record(**overrides)) is escalated
