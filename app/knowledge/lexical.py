"""BM25 (bm25s) over the same chunks as the dense index, saved beside Chroma.

Rebuilt from the manifest after every ingest that changed something; BM25's statistics are
corpus-wide, so a rebuild is both simpler and more exact than patching.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

_META = "supportbot.json"


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)


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


class LexicalIndex:
    """A BM25 index over chunk texts, addressable by chunk id.

    Example:
        >>> idx = LexicalIndex.build(["a::1", "b::1"], ["track my order", "reset password"])
        >>> idx.search("tracking orders", 1)[0][0]
        'a::1'
    """

    def __init__(self, bm25: bm25s.BM25 | None, chunk_ids: list[str], generation: int = 0):
        self.bm25 = bm25
        self.chunk_ids = chunk_ids
        self.generation = generation

    @classmethod
    def build(cls, chunk_ids: list[str], texts: list[str], generation: int = 0) -> LexicalIndex:
        if not chunk_ids:
            return cls(None, [], generation)
        bm25 = bm25s.BM25(method="lucene")
        bm25.index(tokenize(texts), show_progress=False)
        return cls(bm25, list(chunk_ids), generation)

    def search(self, query: str, k: int,
               allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` chunk ids with their BM25 scores (zero-score matches dropped); with
        ``allowed``, only among those chunk ids."""
        if self.bm25 is None or not self.chunk_ids:
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        mask = None
        if allowed is not None:
            mask = np.fromiter((cid in allowed for cid in self.chunk_ids), np.float32,
                               len(self.chunk_ids))
            k = min(k, int(mask.sum()))
            if k == 0:
                return []
        k = min(k, len(self.chunk_ids))
        # get_scores + argpartition: bm25s.retrieve's batching and progress machinery cost
        # more than the scoring itself for one query over a help center.
        scores = np.asarray(self.bm25.get_scores(tokens[0]), dtype=np.float32)
        if mask is not None:
            scores = scores * mask
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.chunk_ids[int(d)], float(scores[d])) for d in top if scores[d] > 0]

    def save(self, directory: Path) -> None:
        """Write to a fresh temporary directory, then swap it in (unique names, so a crash or
        a second writer never trips over leftovers)."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".tmp-", dir=directory.parent))
        if self.bm25 is not None:
            self.bm25.save(str(tmp))
        (tmp / _META).write_text(json.dumps(
            {"generation": self.generation, "chunk_ids": self.chunk_ids}))
        old = Path(tempfile.mkdtemp(prefix=directory.name + ".old-", dir=directory.parent))
        old.rmdir()
        if directory.exists():
            directory.rename(old)
        tmp.rename(directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        """The saved index, or ``None`` when there is none (or it is unreadable)."""
        meta_path = directory / _META
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            ids = list(meta["chunk_ids"])
            bm25 = bm25s.BM25.load(str(directory)) if ids else None
        except (OSError, ValueError, KeyError):
            return None
        return cls(bm25, ids, int(meta.get("generation", 0)))
