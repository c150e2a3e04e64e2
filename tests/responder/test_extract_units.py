"""The units of an article's lines: table rows split into cells, and a table split across
passages answered with its header (through the real engine on the telecom help center)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.container import Components, build, scratch_store
from app.domain import Decision
from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder
from app.responder.providers.extract_units import split_units
from pipelines.ingest import Ingester
from tests.conftest import KNOWLEDGE, settings_for

TELECOM = KNOWLEDGE / "benchmarks" / "telecom" / "articles"


def units_of(*lines: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(u.kind, u.cells) for u in split_units([(line, 0) for line in lines])]


def test_table_cells_split_on_unescaped_pipes_only() -> None:
    assert units_of(
        "| Key | Means |",
        "| --- | --- |",
        r"| a \| b | either a or b |",
        r"| Ctrl+\| | split the window \| pane |",
    ) == [
        ("header", ("Key", "Means")),
        ("row", ("a | b", "either a or b")),
        ("row", ("Ctrl+|", "split the window | pane")),
    ]


def test_table_cells_without_escapes_are_split_as_before() -> None:
    assert units_of("| Plan | Price |", "|---|---|", "| **Basic** | [£5](https://x.test) |",
                    "| Empty |  |") == [
        ("header", ("Plan", "Price")),
        ("row", ("Basic", "£5")),
        ("row", ("Empty", "")),
    ]


# ---- a table split across chunks, through the engine -------------------------------------

@pytest.fixture(scope="module")
def telecom(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Components]:
    settings = settings_for(tmp_path_factory.mktemp("telecom") / "data")
    kb = KnowledgeBase(settings, embedder=embedder)
    Ingester(kb, progress=False).run([TELECOM], "articles")
    with scratch_store(settings) as store, build(settings, kb=kb, store=store) as engine:
        yield engine


def test_a_row_of_a_split_table_is_said_under_the_tables_header(telecom: Components) -> None:
    # "Solid purple" is in the third piece of the hub-lights table: once it opened that piece
    # without a header, and was said as the header itself.
    reply = telecom.conversations.answer("What does a solid purple light on my hub mean?",
                                         variant="control", user_id="split-table")
    assert reply.decision == Decision.ANSWER, reply.reason
    assert reply.cited_article_ids[0] == "hub-lights-explained"
    lines = [line.strip() for line in reply.text.splitlines()]
    header = lines.index("| Light | What it means | What to do |")
    assert lines[header + 1] == "|---|---|---|"
    purple = next(i for i, line in enumerate(lines) if line.startswith("| Solid purple |"))
    assert purple > header + 1
    assert all(line.startswith("|") for line in lines[header:purple + 1])
    assert lines[purple + 1:purple + 2] != ["|---|---|---|"]  # a row, not a header
