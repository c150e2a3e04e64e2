"""Retrieval quality: BM25 alone, dense alone and hybrid, against the naive floor.

The floor is the issue's baseline: 200-word chunks, BM25 and MiniLM fused by plain RRF, best
chunk per article, no title handling. Ours is whatever the index built by ``supportbot ingest``
does (same model, same questions).
Usage: python benchmarks/bench_retrieval.py [--questions FILE] [--k 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the model libraries are imported

import bm25s
import numpy as np

from app.config import Settings
from app.container import knowledge
from app.knowledge.fusion import aggregate, rrf
from eval.metrics.retrieval import (
    evaluate_retrieval,
    load_questions,
    recall_at,
    reciprocal_rank,
)
from pipelines.ingest import Ingester
from pipelines.loaders import load_file, walk

ROOT = Path(__file__).resolve().parents[1]


def naive_floor(articles: Path, rows: list[dict[str, Any]], embedder: Any,
                k: int) -> dict[str, float]:
    chunks: list[tuple[str, str]] = []
    for f in walk(articles):
        for d in load_file(f):
            if isinstance(d, Exception):
                continue
            words = d.text.split()
            for start in range(0, max(1, len(words)), 200):
                chunks.append((d.id, " ".join(words[start:start + 200])))
    ids = [f"{doc}::{i}" for i, (doc, _) in enumerate(chunks)]
    owner = {cid: doc for cid, (doc, _) in zip(ids, chunks, strict=True)}
    vectors = embedder.embed_documents([t for _, t in chunks])
    bm25 = bm25s.BM25()
    bm25.index(bm25s.tokenize([t for _, t in chunks], show_progress=False), show_progress=False)
    qv = embedder.embed_documents([r["question"] for r in rows])
    totals = {"recall@1": 0.0, "recall@5": 0.0, f"recall@{k}": 0.0, "mrr": 0.0}
    for row, v in zip(rows, qv, strict=True):
        dense = [ids[i] for i in np.argsort(-(vectors @ v))[:40]]
        docs, scores = bm25.retrieve(bm25s.tokenize([row["question"]], show_progress=False),
                                     k=40, show_progress=False)
        lexical = [ids[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        fused = rrf([(dense, 1.0), (lexical, 1.0)], 60)
        ranked = [g for g, _, _ in aggregate(fused, owner.__getitem__)]
        gold = set(row["gold_article_ids"])
        totals["recall@1"] += recall_at(ranked, gold, 1)
        totals["recall@5"] += recall_at(ranked, gold, 5)
        totals[f"recall@{k}"] += recall_at(ranked, gold, k)
        totals["mrr"] += reciprocal_rank(ranked, gold)
    return {key: val / len(rows) for key, val in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--knowledge", type=Path, default=ROOT / "knowledge")
    ap.add_argument("--questions", type=Path,
                    default=ROOT / "knowledge/eval/retrieval_questions.jsonl")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = load_questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        parts = knowledge(Settings(data_dir=Path(tmp)))
        Ingester(parts.kb, progress=False).run([args.knowledge / "articles"], "articles")
        t0 = time.perf_counter()
        ours = evaluate_retrieval(parts, rows, args.k)["modes"]
        elapsed = time.perf_counter() - t0
        floor = naive_floor(args.knowledge / "articles", rows, parts.kb.embedder, args.k)
    result = {"n": len(rows), "k": args.k, "naive_floor": floor, **ours,
              "ms_per_query_all_modes": 1000 * elapsed / len(rows)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{len(rows)} questions, k={args.k}")
    print(f"{'method':<28}{'R@1':>7}{'R@5':>7}{f'R@{args.k}':>7}{'MRR':>7}")
    for name, m in (("naive RRF floor (200 words)", floor), ("BM25 alone", ours["lexical"]),
                    ("dense alone", ours["dense"]), ("hybrid (ours)", ours["hybrid"])):
        print(f"{name:<28}{m['recall@1']:>7.3f}{m['recall@5']:>7.3f}"
              f"{m[f'recall@{args.k}']:>7.3f}{m['mrr']:>7.3f}")


if __name__ == "__main__":
    main()
