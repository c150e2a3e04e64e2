"""Chunking: heading-aware sections, token budgets, embed text and stable content-derived ids."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.errors import SourceError
from app.knowledge.embedder import resolve_model_path
from pipelines.chunking import (
    Chunk,
    ChunkConfig,
    TokenCounter,
    chunk_document,
    embed_text_for,
    tokenizer_counter,
)
from pipelines.documents import SourceDocument
from pipelines.loaders import load_file, walk

ARTICLES = Path(__file__).resolve().parents[2] / "knowledge" / "articles"

# Each paragraph is 45-65 model tokens: with chunk_tokens=96 two of them never fit in one
# chunk (so no merging) and one never needs splitting, i.e. one section == one chunk.
SECTION_TEXT = {
    "intro": "Seeing two charges from us for what you thought was one order? Most of the time it "
             "is a pending hold next to the real charge, or an order that shipped in two boxes. "
             "Run through the checks below before you contact us.",
    "pending": "At checkout we place an authorization hold for the order total and take the real "
               "charge when the order ships. For a few days your statement can show both; the "
               "hold drops off by itself in three to five business days.",
    "split": "Each package is charged when it ships. An order that arrived in two boxes can show "
             "up as two charges with different amounts that add up to the order total, so check "
             "the packages listed under your orders.",
    "refund": "If it really is a duplicate, our billing team refunds it within two business days "
              "of confirming it with the payment processor. Your bank then takes five to ten "
              "business days to show the credit on your statement.",
}
CONFIG = ChunkConfig(chunk_tokens=96, overlap=12)


@pytest.fixture(scope="module")
def count() -> TokenCounter:
    return tokenizer_counter(str(resolve_model_path("")))


def billing_doc(**edits: str) -> SourceDocument:
    text = {**SECTION_TEXT, **edits}
    body = (
        "# I was charged twice\n\n"
        f"{text['intro']}\n\n"
        "## Check these first\n\n"
        f"{text['pending']}\n\n"
        "### Did it ship in two packages?\n\n"
        f"{text['split']}\n\n"
        "## Getting a refund\n\n"
        f"{text['refund']}\n"
    )
    return SourceDocument(id="double-charge", text=body, title="I was charged twice",
                          url="https://help.example.test/double-charge")


@pytest.fixture(scope="module")
def sample_articles() -> list[SourceDocument]:
    docs = [d for f in walk(ARTICLES) for d in load_file(f) if not isinstance(d, SourceError)]
    assert len(docs) >= 20, "the sample knowledge/articles directory is missing"
    return docs


def test_sections_follow_markdown_headings(count: TokenCounter) -> None:
    doc = billing_doc()
    chunks = chunk_document(doc, count, CONFIG)
    assert [c.section for c in chunks] == [
        "",  # the intro under the H1 that repeats the title: the title adds nothing
        "Check these first",
        "Check these first > Did it ship in two packages?",
        "Getting a refund",
    ]
    assert [c.text for c in chunks] == [SECTION_TEXT[k] for k in
                                        ("intro", "pending", "split", "refund")]
    assert [c.index for c in chunks] == [0, 1, 2, 3]
    assert {c.doc_id for c in chunks} == {"double-charge"}


def test_embed_text_carries_title_and_section(count: TokenCounter) -> None:
    chunks = chunk_document(billing_doc(), count, CONFIG)
    first_lines = [c.embed_text.split("\n", 1)[0] for c in chunks]
    assert first_lines == [
        "I was charged twice",
        "I was charged twice — Check these first",
        "I was charged twice — Check these first > Did it ship in two packages?",
        "I was charged twice — Getting a refund",
    ]
    for c in chunks:
        assert c.embed_text.split("\n", 1)[1] == c.text


def test_every_sample_chunk_starts_with_its_title(
    count: TokenCounter, sample_articles: list[SourceDocument]
) -> None:
    for doc in sample_articles:
        chunks = chunk_document(doc, count, ChunkConfig())
        assert chunks, doc.id
        for c in chunks:
            assert c.embed_text.startswith(doc.title), (doc.id, c.embed_text[:80])
            assert c.doc_id == doc.id and c.id.startswith(f"{doc.id}::")


@pytest.mark.parametrize("budget", [64, 200])
def test_no_chunk_body_exceeds_the_token_budget(
    count: TokenCounter, sample_articles: list[SourceDocument], budget: int
) -> None:
    long_paragraph = " ".join(
        f"step {i} is to check the cable and the socket and the fuse" for i in range(120))
    long_list = "\n".join(f"- item number {i} with a few extra words" for i in range(150))
    extra = {
        "long-para": SourceDocument(id="long-para", text=f"## Wall of text\n\n{long_paragraph}",
                                    title="Long"),
        "long-list": SourceDocument(id="long-list", text=f"## List\n\n{long_list}", title="List"),
        "plain": SourceDocument(id="plain", text=long_paragraph, title="Plain", fmt="text"),
    }
    for doc in [*sample_articles, *extra.values()]:
        chunks = chunk_document(doc, count, ChunkConfig(chunk_tokens=budget, overlap=16))
        for c in chunks:
            assert count(c.text) <= budget, (doc.id, c.section, count(c.text))
        if doc.id in extra:
            # Long sections were split, and nothing at their end was dropped.
            assert len(chunks) > 1
            last_words = " ".join(doc.text.split()[-4:])
            assert chunks[-1].text.endswith(last_words)


def test_link_urls_are_stripped_from_embed_text_but_kept_in_text(count: TokenCounter) -> None:
    body = ("See [Pending charges](https://help.lumen.example/articles/pending-authorization) "
            "and **do not** open a `chargeback` yet.")
    doc = SourceDocument(id="links", text=f"## Related\n\n{body}", title="Links")
    [chunk] = chunk_document(doc, count, CONFIG)
    assert "https://help.lumen.example/articles/pending-authorization" in chunk.text
    assert "[Pending charges](" in chunk.text
    assert "https://" not in chunk.embed_text
    assert "Pending charges" in chunk.embed_text
    assert "do not open a chargeback yet." in chunk.embed_text
    assert "**" not in chunk.embed_text and "`" not in chunk.embed_text


def test_embed_text_for_is_pure() -> None:
    assert embed_text_for("T", "", "[a](http://x) b") == "T\na b"
    assert embed_text_for("T", "S > U", "__c__") == "T — S > U\nc"


def test_chunk_ids_are_stable_across_runs(count: TokenCounter) -> None:
    first = chunk_document(billing_doc(), count, CONFIG)
    second = chunk_document(billing_doc(), count, CONFIG)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == len(first)
    assert all(c.id.startswith("double-charge::") for c in first)


def test_editing_one_section_changes_only_that_sections_chunk_ids(count: TokenCounter) -> None:
    before = chunk_document(billing_doc(), count, CONFIG)
    edited = SECTION_TEXT["split"].replace("two boxes", "three boxes")
    after = chunk_document(billing_doc(split=edited), count, CONFIG)
    assert len(before) == len(after) == 4
    changed = [i for i, (b, a) in enumerate(zip(before, after, strict=True)) if b.id != a.id]
    assert changed == [2]
    assert after[2].section == "Check these first > Did it ship in two packages?"
    assert "three boxes" in after[2].text


def test_retitling_a_document_changes_every_chunk_id(count: TokenCounter) -> None:
    before = chunk_document(billing_doc(), count, CONFIG)
    renamed = dataclasses.replace(billing_doc(), title="Charged twice for one order")
    after = chunk_document(renamed, count, CONFIG)
    assert not {c.id for c in before} & {c.id for c in after}


def test_small_sections_are_merged_with_their_headings_inline(count: TokenCounter) -> None:
    doc = SourceDocument(id="tiny", title="Tiny", text=(
        "## Hours\n\nWe are open 8 to 8.\n\n## Phone\n\nCall us any time.\n\n"
        "## Email\n\nWrite to support."))
    [chunk] = chunk_document(doc, count, ChunkConfig())
    assert chunk.section == "Hours"
    text = chunk.text
    assert text.startswith("We are open 8 to 8.")
    # each later heading is kept inline, right before its own body
    positions = [text.index(part) for part in
                 ("We are open 8 to 8.", "Phone", "Call us any time.", "Email",
                  "Write to support.")]
    assert positions == sorted(positions)
    assert "##" not in text


def test_repeated_passages_get_distinct_ids(count: TokenCounter) -> None:
    same = SECTION_TEXT["refund"]
    doc = SourceDocument(id="dup", title="Dup", text=f"## Note\n\n{same}\n\n## Other\n\n"
                         f"{SECTION_TEXT['pending']}\n\n## Note\n\n{same}")
    chunks = chunk_document(doc, count, CONFIG)
    assert [c.section for c in chunks] == ["Note", "Other", "Note"]
    ids = [c.id for c in chunks]
    assert len(set(ids)) == 3
    assert ids[2] == f"{ids[0]}-1"


def test_plain_text_is_not_split_on_hash_lines(count: TokenCounter) -> None:
    sentences = [f"# not a heading {i}: the customer asked about refund number {i}."
                 for i in range(60)]
    doc = SourceDocument(id="conv-1", title="Refund chat", text="\n".join(sentences), fmt="text")
    chunks = chunk_document(doc, count, CONFIG)
    assert len(chunks) > 1
    assert {c.section for c in chunks} == {""}
    assert all(c.embed_text.startswith("Refund chat\n") for c in chunks)
    joined = "\n".join(c.text for c in chunks)
    assert all(s in joined for s in sentences)
    assert all(count(c.text) <= CONFIG.chunk_tokens for c in chunks)


def test_chunks_are_dataclasses_with_the_documented_fields(count: TokenCounter) -> None:
    [chunk, *_] = chunk_document(billing_doc(), count, CONFIG)
    assert isinstance(chunk, Chunk)
    assert {f.name for f in dataclasses.fields(Chunk)} == {
        "id", "doc_id", "index", "section", "text", "embed_text"}
