"""Chunking Markdown tables: a split table's pieces each open with its header; documents whose
tables are not split chunk exactly as before (same ids, so nothing is re-embedded)."""

from __future__ import annotations

import pytest

from app.knowledge.embedder import resolve_model_path
from pipelines.chunking import ChunkConfig, TokenCounter, chunk_document, tokenizer_counter
from pipelines.documents import SourceDocument
from tests.pipelines.test_chunking import billing_doc

HEADER = "| Light | What it means | What to do |"
RULE = "| --- | --- | --- |"
COLOURS = ("white", "orange", "red", "blue", "green", "purple", "pink", "amber", "cyan")
ROWS = [f"| Solid {c} | The hub is in state {c}. | Restart it and wait {i} minutes. |"
        for i, c in enumerate(COLOURS, start=2)]
CONFIG = ChunkConfig(chunk_tokens=96, overlap=12)
LONG_LIST = "\n".join(f"- step {i}: check the cable, the socket and the fuse." for i in range(30))


@pytest.fixture(scope="module")
def count() -> TokenCounter:
    return tokenizer_counter(str(resolve_model_path("")))


def table_doc(rows: list[str], before: str = "", after: str = "",
              header: str = HEADER, rule: str = RULE) -> SourceDocument:
    table = "\n".join([header, rule, *rows])
    body = "\n\n".join(part for part in (before, table, after) if part)
    return SourceDocument(id="lights", title="Hub lights", text=f"## Light colours\n\n{body}")


def test_a_long_table_split_over_three_chunks_repeats_its_header_in_each(
        count: TokenCounter) -> None:
    chunks = chunk_document(table_doc(ROWS), count, CONFIG)
    assert len(chunks) == 3
    said: list[str] = []
    for c in chunks:
        lines = c.text.splitlines()
        assert lines[:2] == [HEADER, RULE], c.text
        assert count(c.text) <= CONFIG.chunk_tokens
        said += lines[2:]
    assert said == ROWS  # every row whole, once, in order
    assert len({c.id for c in chunks}) == 3


def test_text_around_a_split_table_is_kept_and_a_lead_in_stays_with_the_header(
        count: TokenCounter) -> None:
    lead = "Each colour of the light means something different:"
    after = "If none of this helps, contact us."
    chunks = chunk_document(table_doc(ROWS, before=lead, after=after), count, CONFIG)
    assert chunks[0].text.startswith(lead)
    assert f"{lead}\n{HEADER}\n{RULE}\n{ROWS[0]}" in chunks[0].text.replace("\n\n", "\n")
    assert all(c.text.startswith(f"{HEADER}\n{RULE}\n") for c in chunks[1:]
               if c.text.startswith("|"))
    assert chunks[-1].text.endswith(after)
    joined = "\n".join(c.text for c in chunks)
    assert all(joined.count(row) == 1 for row in ROWS)
    assert all(count(c.text) <= CONFIG.chunk_tokens for c in chunks)


def test_a_table_whose_header_alone_is_over_budget_is_chunked_as_before(
        count: TokenCounter) -> None:
    wide = "| " + " | ".join(f"Column heading number {i}" for i in range(14)) + " |"
    rule = "|" + " --- |" * 14
    chunks = chunk_document(table_doc(ROWS, header=wide, rule=rule), count, CONFIG)
    joined = "\n".join(c.text for c in chunks)
    assert joined.count(rule) == 1  # never repeated
    assert all(row in joined for row in ROWS)
    assert all(count(c.text) <= CONFIG.chunk_tokens for c in chunks)


def test_a_table_with_a_row_too_long_for_a_chunk_is_chunked_as_before(
        count: TokenCounter) -> None:
    long_row = "| Solid grey | " + " ".join(f"word{i}" for i in range(150)) + " | Call us. |"
    rows = [*ROWS[:4], long_row, *ROWS[4:]]
    chunks = chunk_document(table_doc(rows), count, CONFIG)
    joined = "\n".join(c.text for c in chunks)
    assert joined.count(RULE) == 1
    assert all(f"word{i} " in joined for i in range(150))
    assert all(row in joined for row in ROWS)
    assert all(count(c.text) <= CONFIG.chunk_tokens for c in chunks)


# Ids from the chunker before tables were handled: an index built then must keep every
# passage of these documents (none has a split table).
BEFORE = {
    "billing": ["double-charge::9405b762cdc2ff7a", "double-charge::e2bb7c993c027487",
                "double-charge::e87ceb7093e1f363", "double-charge::b042f6ea9faf78bc"],
    "long": ["long::f7b108c723408a26", "long::9269014309ff68ac", "long::1447643aa6c50d2d",
             "long::fb83bd0145647592", "long::970753fa390e2397"],
    "fees": ["fees::b89b5fc89bd29414", "fees::f1301b579917b480", "fees::027da183b40df904",
             "fees::c6779cbeaa200523", "fees::df675a0d3b5712e1", "fees::3095dc9b2edf7407",
             "fees::3a0537e68ea2e081", "fees::8c6ebb581856552a", "fees::7147de5826cb324d",
             "fees::6b8b88d8dc0b6fed", "fees::3157208a9a85e7b7"],
}


def test_documents_without_split_tables_chunk_exactly_as_before(count: TokenCounter) -> None:
    small_table = "| Fee | Price |\n| --- | --- |\n| Late payment | £12 |\n| Paper bill | £2 |"
    docs = {
        "billing": (billing_doc(), ChunkConfig(chunk_tokens=64, overlap=12)),
        "long": (SourceDocument(id="long", title="Long", text=f"## Steps\n\n{LONG_LIST}"),
                 CONFIG),
        # a long section with a small table that lands whole in one chunk
        "fees": (SourceDocument(id="fees", title="Fees", text=(
            f"## Fees\n\n{LONG_LIST}\n\n{small_table}\n\n{LONG_LIST}")), CONFIG),
    }
    for name, (doc, config) in docs.items():
        assert [c.id for c in chunk_document(doc, count, config)] == BEFORE[name], name
