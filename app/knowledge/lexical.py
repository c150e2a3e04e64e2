"""BM25 (bm25s) over the same chunks as the dense index, saved beside Chroma, and the spelling
correction of queries against the words of that same index.

Rebuilt from the manifest after every ingest that changed something; BM25's statistics are
corpus-wide, so a rebuild is both simpler and more exact than patching. An index saved in an
older format loads as ``None``, which makes ``IndexWriter.lexical`` rebuild it from the manifest.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Collection, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN
from rapidfuzz import distance, process

_META = "supportbot.json"
_VOCABULARY = "vocabulary.json"
#: version of what ``save`` writes; an index saved in another one is rebuilt
FORMAT = 2


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)
_WORD_OR_NOT = re.compile(r"(?u)\w+|\W+")
#: shorter words are left alone: one edit away from them lies too many other words
MIN_CORRECTED = 4


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, Snowball-stemmed tokens (the same for corpus and queries).

    The same rules as ``bm25s.tokenize(stopwords="en", stemmer=...)``, without its per-call
    vocabulary and progress-bar set-up, which cost more than the tokenising on short queries.

    >>> tokenize(["Where is my refund?"])
    [['where', 'my', 'refund']]
    """
    stem = _stemmer().stemWords
    return [stem([t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS])
            for text in texts]


def surface_vocabulary(texts: Iterable[str]) -> dict[str, int]:
    """How often each lower-cased alphabetic word occurs (what typos are corrected towards)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in _TOKEN.findall(text.lower()) if w.isalpha())
    return dict(counts)


class Lexicon:
    """Words known to be spelt right although the knowledge base may not use them.

    Correction leaves these alone, so "like" in a help center that never says it is not taken
    for a typo of "live". Built from a word list such as the embedding model's ``vocab.txt``.

    Example:
        >>> Lexicon(["chair", "quit"]).knows("chairs")
        True
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w.lower() for w in words if w.isalpha())
        self.stems = frozenset(_stemmer().stemWords(sorted(self.words)))

    def knows(self, word: str) -> bool:
        return word in self.words or _stemmer().stemWord(word) in self.stems


@lru_cache(maxsize=4)
def model_lexicon(model_dir: Path) -> Lexicon | None:
    """The whole words of a WordPiece model's ``vocab.txt`` (``None`` when it has none)."""
    path = model_dir / "vocab.txt"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return Lexicon(w for w in lines if not w.startswith(("##", "[")))


class LexicalIndex:
    """A BM25 index over chunk texts, addressable by chunk id, with the corpus's words.

    Example:
        >>> idx = LexicalIndex.build(["a::1", "b::1"], ["track my order", "reset password"])
        >>> idx.search("tracking orders", 1)[0][0]
        'a::1'
        >>> idx.correct("pasword reset")
        'password reset'
    """

    def __init__(self, bm25: bm25s.BM25 | None, chunk_ids: list[str], generation: int = 0,
                 vocabulary: dict[str, int] | None = None):
        self.bm25 = bm25
        self.chunk_ids = chunk_ids
        self.generation = generation
        self.vocabulary = vocabulary or {}
        self._words = list(self.vocabulary)
        self._stems: dict[str, int] = bm25.vocab_dict if bm25 is not None else {}
        self._position: dict[str, int] | None = None

    @classmethod
    def build(cls, chunk_ids: list[str], texts: list[str], generation: int = 0) -> LexicalIndex:
        if not chunk_ids:
            return cls(None, [], generation)
        bm25 = bm25s.BM25(method="lucene")
        bm25.index(tokenize(texts), show_progress=False)
        return cls(bm25, list(chunk_ids), generation, surface_vocabulary(texts))

    # ---- queries ---------------------------------------------------------------------------
    def correct(self, query: str, lexicon: Lexicon | None = None) -> str:
        """``query`` with each word the index does not know replaced by the most frequent
        index word one edit away (a transposition counts as one edit), if there is one.

        Left alone: short words, stop words, words with digits, words whose stem the index
        knows (plurals, tenses) and words in ``lexicon`` (real words the help center does
        not happen to use)."""
        if not self._words or self.bm25 is None:
            return query
        out = []
        for piece in _WORD_OR_NOT.findall(query):
            word = piece.lower()
            if self._is_known(word, lexicon):
                out.append(piece)
                continue
            out.append(self._nearest(word) or piece)
        return "".join(out)

    def _is_known(self, word: str, lexicon: Lexicon | None) -> bool:
        if len(word) < MIN_CORRECTED or not word.isalpha() or word in _STOPWORDS:
            return True
        if word in self.vocabulary or _stemmer().stemWord(word) in self._stems:
            return True
        return lexicon is not None and lexicon.knows(word)

    def _nearest(self, word: str) -> str | None:
        found = process.extract(word, self._words, scorer=distance.DamerauLevenshtein.distance,
                                score_cutoff=1, limit=None)
        if not found:
            return None
        return min(found, key=lambda f: (f[1], -self.vocabulary[f[0]], f[0]))[0]

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every chunk (in ``chunk_ids`` order) for ``query``; ``None`` when the
        index is empty or the query has no searchable word."""
        if self.bm25 is None or not self.chunk_ids:
            return None
        tokens = tokenize([query])[0]
        if not tokens:
            return None
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def top(self, scores: np.ndarray | None, k: int,
            allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best chunk ids of a ``scores`` array with their scores (zero scores
        dropped); with ``allowed``, only among those chunk ids."""
        if scores is None:
            return []
        if allowed is not None:
            mask = np.fromiter((cid in allowed for cid in self.chunk_ids), np.float32,
                               len(self.chunk_ids))
            scores = scores * mask
        k = min(k, len(self.chunk_ids))
        if k <= 0:
            return []
        # argpartition: bm25s.retrieve's batching and progress machinery cost more than the
        # scoring itself for one query over a help center.
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.chunk_ids[int(d)], float(scores[d])) for d in best if scores[d] > 0]

    def scores_of(self, scores: np.ndarray, chunk_ids: Iterable[str]) -> dict[str, float]:
        """The entries of a ``scores`` array for some chunk ids (ids not indexed left out)."""
        if self._position is None:
            self._position = {cid: i for i, cid in enumerate(self.chunk_ids)}
        position = self._position
        return {cid: float(scores[position[cid]]) for cid in chunk_ids if cid in position}

    def search(self, query: str, k: int,
               allowed: Collection[str] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` chunk ids with their BM25 scores (zero-score matches dropped); with
        ``allowed``, only among those chunk ids."""
        return self.top(self.scores(query), k, allowed)

    # ---- files -----------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write to a fresh temporary directory, then swap it in (unique names, so a crash or
        a second writer never trips over leftovers)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent))
        if self.bm25 is not None:
            self.bm25.save(str(tmp))
        (tmp / _VOCABULARY).write_text(json.dumps(self.vocabulary))
        (tmp / _META).write_text(json.dumps(
            {"format": FORMAT, "generation": self.generation, "chunk_ids": self.chunk_ids}))
        old = Path(tempfile.mkdtemp(prefix=directory.name + ".old-", dir=directory.parent))
        old.rmdir()
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        """The saved index, or ``None`` when there is none, it is unreadable or it was saved
        in another format (the caller rebuilds it from the manifest)."""
        meta_path = directory / _META
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT:
                return None
            ids = list(meta["chunk_ids"])
            bm25 = bm25s.BM25.load(str(directory)) if ids else None
            vocabulary = json.loads((directory / _VOCABULARY).read_text())
        except (OSError, ValueError, KeyError):
            return None
        return cls(bm25, ids, int(meta.get("generation", 0)), vocabulary)
