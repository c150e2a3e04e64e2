"""Retrieval on every help center: the baseline against the tuned retriever, leave one domain out.

Each domain of ``eval.domains.load_domains()`` (Lumen and ``knowledge/benchmarks/*``) is ingested
into its own directory, ``<SUPPORTBOT_DATA_DIR>/benchmarks/<domain>`` (the layout of
``supportbot eval domains``; incremental, so a second run embeds nothing), and its first-turn
questions go through the real ``HybridRetriever`` (each question embedded once, then searched
under every configuration). Printed:

1. recall@1, recall@5 and MRR per domain for ``BASELINE`` and for the shipped defaults;
2. leave one domain out: for each domain, the configuration of ``GRID`` with the best mean MRR
   on the three others, and its figures on the held-out one (the figures to quote), then the
   same with parts of the grid taken away (what each part adds, held out);
3. per-query search latency (vector given, so the embedding is left out), mean and p95, of
   both configurations in the same run, interleaved.

Usage: SUPPORTBOT_DATA_DIR=/tmp/retrieval-data python benchmarks/bench_retrieval_domains.py
       [--only lumen,saas] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the model libraries are imported

import numpy as np

from app.config import Settings
from app.container import knowledge
from app.knowledge.embedder import get_embedder
from app.knowledge.retriever import BASELINE, HybridRetriever, RetrievalConfig
from eval.domains import Domain, load_domains, retrieval_figures
from pipelines.ingest import Ingester

FIGURES = ("recall@1", "recall@5", "mrr")
SHIPPED = RetrievalConfig()
#: every configuration leave-one-domain-out chooses from (the baseline first: ties keep it)
GRID: list[RetrievalConfig] = [BASELINE] + [
    replace(SHIPPED, fusion="rrf", rrf_k=k, lexical_weight=w, decay=d, correct_typos=t)
    for k in (5, 10, 20) for w in (0.5, 1.0) for d in (0.05, 0.1) for t in (False, True)
] + [
    replace(SHIPPED, fusion="convex", lexical_weight=w, decay=d, correct_typos=t)
    for w in (0.05, 0.1, 0.15, 0.2, 0.3) for d in (0.0, 0.05, 0.1, 0.2) for t in (False, True)
]
#: parts of the grid taken away, to see what each adds on held-out domains
ABLATIONS: dict[str, Callable[[RetrievalConfig], bool]] = {
    "whole grid": lambda c: True,
    "no typo correction": lambda c: not c.correct_typos,
    "RRF only": lambda c: c.fusion == "rrf",
}


@dataclass
class Prepared:
    """One ingested domain: its retriever, first-turn questions and their vectors."""

    domain: Domain
    retriever: HybridRetriever
    texts: list[str]
    gold: list[tuple[str, ...]]
    vectors: np.ndarray

    def figures(self, config: RetrievalConfig) -> dict[str, float]:
        self.retriever.config = config
        found = [[r.article_id for r in self.retriever.search(q, 10, vector=v)]
                 for q, v in zip(self.texts, self.vectors, strict=True)]
        return retrieval_figures(found, self.gold)


def label(c: RetrievalConfig) -> str:
    typos = "typos on" if c.correct_typos else "typos off"
    if c.fusion == "rrf":
        return f"rrf k={c.rrf_k} lexical={c.lexical_weight:g} decay={c.decay:g} {typos}"
    return f"convex lexical={c.lexical_weight:g} decay={c.decay:g} {typos}"


def prepare(settings: Settings, only: Sequence[str]) -> list[Prepared]:
    embedder = get_embedder(settings)
    out = []
    for domain in load_domains(only=only):
        domain_settings = settings.model_copy(update={
            "data_dir": settings.data_dir / "benchmarks" / domain.name, "database_url": None,
            "chroma_host": None})
        parts = knowledge(domain_settings, embedder=embedder)
        Ingester(parts.kb, progress=False).run([domain.articles], "articles")
        first = [q for q in domain.questions if not q.history]
        texts = [q.text for q in first]
        vectors = parts.kb.query_embedder.embed_documents(texts)
        out.append(Prepared(domain, parts.retriever, texts, [q.gold for q in first], vectors))
    return out


def leave_one_out(results: list[dict[str, dict[str, float]]], names: list[str],
                  keep: Callable[[RetrievalConfig], bool]) -> dict[str, dict[str, Any]]:
    """Per held-out domain: the kept configuration with the best mean MRR on the others."""
    chosen = {}
    for held in names:
        train = [n for n in names if n != held]
        best = max((i for i, c in enumerate(GRID) if keep(c)),
                   key=lambda i: (np.mean([results[i][n]["mrr"] for n in train]), -i))
        chosen[held] = {"config": label(GRID[best]), "grid_index": best,
                        "held_out": results[best][held]}
    return chosen


def latency(prepared: list[Prepared], configs: dict[str, RetrievalConfig]) -> dict[str, Any]:
    """Milliseconds per ``search`` (vector given) of each configuration, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    for p in prepared:
        for config in configs.values():  # warm: catalogs, BM25, the lexicon
            p.retriever.config = config
            p.retriever.search(p.texts[0], 10, vector=p.vectors[0])
        for q, v in zip(p.texts, p.vectors, strict=True):
            for name, config in configs.items():
                p.retriever.config = config
                t0 = time.perf_counter()
                p.retriever.search(q, 10, vector=v)
                times[name].append(1000 * (time.perf_counter() - t0))
    return {name: {"mean_ms": float(np.mean(t)), "p95_ms": float(np.percentile(t, 95)),
                   "n": len(t)} for name, t in times.items()}


def _row(name: str, f: dict[str, float]) -> str:
    return f"{name:<10}" + "".join(f"{f[k]:>9.3f}" for k in FIGURES)


def report(out: dict[str, Any]) -> None:
    head = f"{'domain':<10}" + "".join(f"{k:>9}" for k in FIGURES)
    print("1. all questions, baseline vs shipped defaults (the defaults saw every domain)")
    print(f"   baseline: {label(BASELINE)}\n   shipped:  {label(SHIPPED)}")
    print(f"{head}   |{'':>1}" + "".join(f"{k:>9}" for k in FIGURES))
    for name, figs in out["baseline"].items():
        print(_row(name, figs) + "   |" + _row("", out["shipped"][name])[10:])
    print("\n2. leave one domain out (chosen on the other three by mean MRR), held-out figures")
    for ablation, chosen in out["leave_one_out"].items():
        print(f"-- {ablation}")
        print(head + "   chosen on the other three")
        for name, c in chosen.items():
            print(_row(name, c["held_out"]) + f"   {c['config']}")
        print(_row("mean", out["held_out_mean"][ablation]))
    print(_row("baseline", out["baseline_mean"]) + "   (baseline mean, same domains)")
    print("\n3. search latency per query (vector given)")
    for name, t in out["latency"].items():
        print(f"{name:<10} mean {t['mean_ms']:.2f} ms  p95 {t['p95_ms']:.2f} ms  (n={t['n']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated domains (default: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    only = [d.strip() for d in args.only.split(",") if d.strip()]
    prepared = prepare(Settings(), only)
    names = [p.domain.name for p in prepared]
    if len(names) < 2:
        ap.error("leave one domain out needs two domains or more")
    results = [{p.domain.name: p.figures(c) for p in prepared} for c in GRID]
    shipped = {p.domain.name: p.figures(SHIPPED) for p in prepared}
    lodo = {name: leave_one_out(results, names, keep) for name, keep in ABLATIONS.items()}

    def mean(per_domain: dict[str, dict[str, float]]) -> dict[str, float]:
        return {k: float(np.mean([f[k] for f in per_domain.values()])) for k in FIGURES}

    out = {
        "n": {p.domain.name: len(p.texts) for p in prepared},
        "baseline": results[0], "shipped": shipped,
        "leave_one_out": lodo,
        "held_out_mean": {a: mean({n: c["held_out"] for n, c in chosen.items()})
                          for a, chosen in lodo.items()},
        "baseline_mean": mean(results[0]),
        "latency": latency(prepared, {"baseline": BASELINE, "shipped": SHIPPED}),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        report(out)


if __name__ == "__main__":
    main()
