"""Ingestion benchmark: our pipeline vs the LangChain standard pipeline, same corpus and model.

Reports, in one run:
- cold ingest documents/s and embedded tokens/s for ours and for LangChain
  (RecursiveCharacterTextSplitter + HuggingFaceEmbeddings + Chroma.from_documents), and the ratio;
- the bare model's tokens/s on our chunks (the compute limit) and our share of it;
- an unchanged re-ingest and a one-article edit, each relative to our cold ingest;
- retrieval quality of both indexes on knowledge/eval/retrieval_questions.jsonl.

Model load time is excluded for both pipelines (each loads the same weights once, before timing).
Usage: python benchmarks/bench_ingest.py [--corpus knowledge] [--repeat 1] [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

# Before the model and vector-store libraries are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from app.config import Settings
from app.container import Knowledge, knowledge
from app.knowledge.embedder import (
    SentenceTransformerEmbedder,
    get_embedder,
    resolve_model_path,
)
from pipelines.ingest import Ingester
from pipelines.loaders import load_file, walk

ROOT = Path(__file__).resolve().parents[1]


def _copy_corpus(src: Path, dst: Path, repeat: int) -> None:
    """Copy the articles (``repeat`` times, ids suffixed) so the corpus can be scaled up."""
    for n in range(repeat):
        for f in walk(src / "articles"):
            rel = f.relative_to(src / "articles")
            out = dst / "articles" / f"r{n}" / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            text = f.read_text(encoding="utf-8")
            if n:
                text = text.replace("\nid: ", f"\nid: r{n}-", 1)
            out.write_text(text, encoding="utf-8")


def bench_ours(corpus: Path, settings: Settings) -> dict[str, Any]:
    parts = knowledge(settings)
    kb = parts.kb
    t0 = time.perf_counter()
    cold = Ingester(kb, progress=False).run([corpus])
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = Ingester(kb, progress=False).run([corpus])
    unchanged_s = time.perf_counter() - t0
    victim = sorted((corpus / "articles").rglob("*.md"))[0]
    victim.write_text(victim.read_text(encoding="utf-8").replace(
        "\n## ", "\n## Updated note\nThis section was edited for the benchmark.\n\n## ", 1),
        encoding="utf-8")
    t0 = time.perf_counter()
    edit = Ingester(kb, progress=False).run([corpus])
    edit_s = time.perf_counter() - t0
    docs = cold.added
    return {
        "documents": docs, "chunks": cold.chunks_embedded, "tokens": cold.tokens_embedded,
        "seconds": cold_s, "docs_per_s": docs / cold_s,
        "tokens_per_s": cold.tokens_embedded / cold_s,
        "unchanged_seconds": unchanged_s, "unchanged_embedded": again.chunks_embedded,
        "edit_seconds": edit_s, "edit_updated": edit.updated, "edit_chunks": edit.chunks_embedded,
        "knowledge": parts,
    }


def bench_langchain(corpus: Path, data: Path, model_path: Path, device: str) -> dict[str, Any]:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(
        model_name=str(model_path), model_kwargs={"device": device, "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True})
    embeddings.embed_query("warm up")
    t0 = time.perf_counter()
    docs = []
    for f in walk(corpus):
        for d in load_file(f):
            if not isinstance(d, Exception):
                docs.append(Document(page_content=d.text, metadata={"doc_id": d.id,
                                                                     "title": d.title}))
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(
        docs)
    store = Chroma.from_documents(chunks, embeddings, persist_directory=str(data),
                                  collection_name="langchain")
    seconds = time.perf_counter() - t0
    tok = embeddings._client.tokenizer
    limit = embeddings._client.max_seq_length
    tokens = sum(min(limit, len(tok(c.page_content)["input_ids"])) for c in chunks)
    return {"documents": len(docs), "chunks": len(chunks), "tokens": tokens, "seconds": seconds,
            "docs_per_s": len(docs) / seconds, "tokens_per_s": tokens / seconds, "store": store}


def bare_model(embedder: SentenceTransformerEmbedder, texts: list[str]) -> dict[str, float]:
    tokens = sum(int(m.sum()) for m in [
        embedder.model.tokenize(texts[i:i + 256])["attention_mask"]
        for i in range(0, len(texts), 256)])
    t0 = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    seconds = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def retrieval_quality(parts: Knowledge, store: Any, questions: Path) -> dict[str, Any]:
    from eval.metrics.retrieval import (
        evaluate_retrieval,
        load_questions,
        recall_at,
        reciprocal_rank,
    )

    rows = load_questions(questions)
    ours = evaluate_retrieval(parts, rows, 10, ["hybrid"])["modes"]["hybrid"]
    r1 = r5 = mrr = 0.0
    for row in rows:
        hits = store.similarity_search(row["question"], k=40)
        ranked: list[str] = []
        for h in hits:
            if h.metadata["doc_id"] not in ranked:
                ranked.append(h.metadata["doc_id"])
        gold = set(row["gold_article_ids"])
        r1 += recall_at(ranked, gold, 1)
        r5 += recall_at(ranked, gold, 5)
        mrr += reciprocal_rank(ranked[:10], gold)
    n = len(rows)
    return {"ours_hybrid": ours, "langchain_dense": {"recall@1": r1 / n, "recall@5": r5 / n,
                                                      "mrr": mrr / n}, "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "knowledge")
    ap.add_argument("--repeat", type=int, default=1, help="copies of the articles to ingest")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--batch-size", type=int, default=Settings().embedding_batch_size)
    ap.add_argument("--questions", type=Path,
                    default=ROOT / "knowledge/eval/retrieval_questions.jsonl")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "ours", embedding_device=args.device,
                            embedding_batch_size=args.batch_size, embedding_fp16=args.fp16)
        model_path = resolve_model_path(settings.embedding_model)
        t0 = time.perf_counter()
        # The process-wide model: the knowledge base below embeds with this same instance.
        embedder = get_embedder(settings)
        load_s = time.perf_counter() - t0
        assert isinstance(embedder, SentenceTransformerEmbedder)
        corpus = Path(tmp) / "corpus"
        _copy_corpus(args.corpus, corpus, args.repeat)
        lc = bench_langchain(corpus, Path(tmp) / "lc", model_path, args.device)
        ours = bench_ours(corpus, settings)
        parts = ours["knowledge"]
        texts = [c.embed_text for coll in ("articles",) for c in parts.kb.manifest.chunks(coll)]
        bare = bare_model(embedder, texts)
        quality = (retrieval_quality(parts, lc["store"], args.questions)
                   if args.questions.exists() and args.repeat == 1 else None)
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "machine": f"{os.cpu_count()} cpu, device={args.device}", "model_load_seconds": load_s,
        "ours": {k: v for k, v in ours.items() if k != "knowledge"},
        "langchain": {k: v for k, v in lc.items() if k != "store"},
        "bare_model": bare,
        "ratio_docs_per_s": ours["docs_per_s"] / lc["docs_per_s"],
        "ratio_tokens_per_s_vs_langchain": ours["tokens_per_s"] / lc["tokens_per_s"],
        "share_of_bare_model_tokens_per_s": ours["tokens_per_s"] / bare["tokens_per_s"],
        "cold_over_unchanged": ours["seconds"] / ours["unchanged_seconds"],
        "edit_over_cold": ours["edit_seconds"] / ours["seconds"],
        "one_over_n": 1 / max(1, ours["documents"]),
        "retrieval": quality,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    o, lc_, b = result["ours"], result["langchain"], result["bare_model"]
    print(f"corpus: {o['documents']} documents ({args.corpus}, x{args.repeat}); "
          f"{result['machine']}")
    print(f"{'pipeline':<12}{'docs':>6}{'chunks':>8}{'tokens':>9}{'seconds':>9}{'docs/s':>9}"
          f"{'tokens/s':>10}")
    for name, r in (("supportbot", o), ("langchain", lc_)):
        print(f"{name:<12}{r['documents']:>6}{r['chunks']:>8}{r['tokens']:>9}{r['seconds']:>9.2f}"
              f"{r['docs_per_s']:>9.2f}{r['tokens_per_s']:>10.0f}")
    print(f"bare model: {b['tokens_per_s']:.0f} tokens/s on our chunks")
    print(f"ratio docs/s supportbot/langchain: {result['ratio_docs_per_s']:.2f}x")
    print(f"supportbot tokens/s as share of bare model: "
          f"{100 * result['share_of_bare_model_tokens_per_s']:.1f}%")
    print(f"unchanged re-ingest: {o['unchanged_seconds']:.3f}s "
          f"({result['cold_over_unchanged']:.0f}x faster than cold, "
          f"{o['unchanged_embedded']} chunks embedded)")
    print(f"edit one article: {o['edit_seconds']:.3f}s = {result['edit_over_cold']:.4f} of cold "
          f"(1/N = {result['one_over_n']:.4f}; {o['edit_chunks']} chunks re-embedded)")
    if quality:
        q, lq = quality["ours_hybrid"], quality["langchain_dense"]
        print(f"retrieval on {quality['n']} questions: supportbot hybrid R@1 {q['recall@1']:.3f} "
              f"R@5 {q['recall@5']:.3f} MRR {q['mrr']:.3f} | langchain dense R@1 "
              f"{lq['recall@1']:.3f} R@5 {lq['recall@5']:.3f} MRR {lq['mrr']:.3f}")


if __name__ == "__main__":
    main()
