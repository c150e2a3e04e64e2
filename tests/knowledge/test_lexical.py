"""``LexicalIndex``: BM25 scores, spelling correction against the index's words, saved files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from app.knowledge.base import KnowledgeBase
from app.knowledge.lexical import FORMAT, LexicalIndex, Lexicon, model_lexicon
from app.knowledge.manifest import ChunkRecord, DocRecord
from app.knowledge.writer import DocumentWrite, IndexWriter

TEXTS = {
    "password::1": "Reset your password\nOpen the sign-in page and choose Forgot password.",
    "invoices::1": "Download invoices\nEvery invoice is a PDF under Billing, then Invoices.",
    "trial::1": "Free trial\nThe free trial lasts fourteen days and needs no credit card.",
    "trial::2": "Free trial\nAt the end of the trial, choose a plan to keep your schedules.",
}


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(list(TEXTS), list(TEXTS.values()))


def test_search_ranks_matching_chunks_with_bm25_scores(index: LexicalIndex) -> None:
    hits = index.search("download my invoices", 3)
    assert hits[0][0] == "invoices::1"
    assert all(score > 0 for _, score in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert index.search("the and of", 3) == []  # stop words only: nothing to search


def test_search_within_allowed_chunks_only(index: LexicalIndex) -> None:
    hits = index.search("free trial invoices", 4, allowed={"trial::2", "password::1"})
    assert [cid for cid, _ in hits] == ["trial::2"]


def test_scores_cover_every_chunk_and_pick_by_id(index: LexicalIndex) -> None:
    scores = index.scores("free trial")
    assert scores is not None and scores.shape == (len(TEXTS),)
    picked = index.scores_of(scores, ["trial::1", "password::1", "not-indexed::1"])
    assert set(picked) == {"trial::1", "password::1"}
    assert picked["trial::1"] > 0 and picked["password::1"] == 0
    assert dict(index.search("free trial", 4))["trial::1"] == pytest.approx(picked["trial::1"])


@pytest.mark.parametrize("typed,meant", [
    ("pasword reset", "password reset"),                     # a letter missing
    ("wher do i downlod our invocies", "wher do i download our invoices"),  # + transposition
    ("DOWNLAOD INVOICES", "download INVOICES"),              # shouting changes nothing
])
def test_typos_are_corrected_to_index_words(index: LexicalIndex, typed: str, meant: str) -> None:
    assert index.correct(typed) == meant


def test_a_corrected_typo_finds_the_chunk_it_missed(index: LexicalIndex) -> None:
    assert index.search("pasword", 1) == []
    assert index.search(index.correct("pasword"), 1)[0][0] == "password::1"


@pytest.mark.parametrize("query", [
    "invoice",            # the stem of an index word ("invoices")
    "trials",             # an inflection of one
    "fre card",           # shorter than four letters
    "plan2 plam3",        # digits
    "whom",               # a stop word
])
def test_known_short_and_odd_words_are_left_alone(index: LexicalIndex, query: str) -> None:
    assert index.correct(query) == query


def test_lexicon_words_are_not_typos(index: LexicalIndex) -> None:
    # "trail" is one transposition from "trial", but a real word: left alone when known
    assert index.correct("free trail") == "free trial"
    assert index.correct("free trail", Lexicon(["trail"])) == "free trail"
    assert Lexicon(["chair"]).knows("chairs")


def test_the_most_frequent_word_wins_a_tie() -> None:
    idx = LexicalIndex.build(["a::1", "b::1"], ["cart cart cart", "card"])
    assert idx.correct("carx") == "cart"


def test_model_lexicon_reads_whole_words_of_a_wordpiece_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n##ing\nlike\nquit\n2024\n", encoding="utf-8")
    lexicon = model_lexicon(tmp_path)
    assert lexicon is not None and lexicon.words == {"like", "quit"}
    assert model_lexicon(tmp_path / "missing") is None


def test_an_empty_index_finds_and_corrects_nothing() -> None:
    empty = LexicalIndex.build([], [])
    assert empty.search("anything", 3) == []
    assert empty.correct("pasword") == "pasword"


def test_save_and_load_keep_scores_and_vocabulary(index: LexicalIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded is not None
    assert loaded.chunk_ids == index.chunk_ids and loaded.vocabulary == index.vocabulary
    assert loaded.search("free trial", 2) == index.search("free trial", 2)
    assert loaded.correct("pasword") == "password"


def test_an_index_saved_in_an_older_format_loads_as_none(index: LexicalIndex,
                                                          tmp_path: Path) -> None:
    index.save(tmp_path / "bm25")
    meta = tmp_path / "bm25" / "supportbot.json"
    old = json.loads(meta.read_text())
    del old["format"]
    meta.write_text(json.dumps(old))
    assert LexicalIndex.load(tmp_path / "bm25") is None


def test_a_data_dir_with_an_older_index_is_rebuilt_and_saved(
    make_kb: Callable[..., KnowledgeBase],
) -> None:
    text = "Descale the kettle with vinegar."
    record = DocRecord("articles", "kettle", "h1", "", "Kettle care", "", {})
    chunk = ChunkRecord("kettle::1", "articles", "kettle", 0, "", text, f"Kettle care\n{text}")
    kb = make_kb()
    with kb.writer() as writer:
        writer.write("articles", [DocumentWrite(record, [chunk])])
    directory = kb.settings.bm25_dir / "articles"
    meta = json.loads((directory / "supportbot.json").read_text())
    meta.pop("format")  # as a release before the vocabulary was kept wrote it
    (directory / "supportbot.json").write_text(json.dumps(meta))
    (directory / "vocabulary.json").unlink()

    rebuilt = IndexWriter(make_kb()).lexical("articles")
    assert rebuilt.correct("vinegr") == "vinegar"
    saved = json.loads((directory / "supportbot.json").read_text())
    assert saved["format"] == FORMAT and (directory / "vocabulary.json").exists()
