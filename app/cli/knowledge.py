"""``supportbot`` command line: ingest, search, stats, serve, eval."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from app.config import Settings, get_settings
from app.errors import SupportbotError

app = typer.Typer(help="supportbot: grounded AI answers over your help center.",
                  no_args_is_help=True, add_completion=False)
eval_app = typer.Typer(help="Offline evaluation.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
# soft_wrap: never hard-wrap lines (a wrapped "file:line" can no longer be grepped).
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _fail(e: Exception, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {e}", highlight=False)
    return typer.Exit(code)


def _kb(settings: Settings | None = None) -> Any:
    from app.knowledge.base import KnowledgeBase

    return KnowledgeBase(settings or get_settings())


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    collection: Annotated[str | None, typer.Option(
        help="articles|conversations (default: from the layout, else articles).")] = None,
    id_field: Annotated[str | None, typer.Option(help="Record field holding the id.")] = None,
    title_field: Annotated[str | None, typer.Option(help="Record field holding the title.")] = None,
    text_field: Annotated[str | None, typer.Option(help="Record field holding the text.")] = None,
    url_field: Annotated[str | None, typer.Option(help="Record field holding the URL.")] = None,
    prune: Annotated[bool | None, typer.Option(
        "--prune/--no-prune", help="Delete documents gone from the source (default: on for "
        "directories).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Ingest help-center articles or past conversations (incremental by content hash)."""
    from pipelines.ingest import Ingester
    from pipelines.loaders import FieldMap

    fields = FieldMap(id_field, title_field, text_field, url_field)
    try:
        report = Ingester(_kb()).run(paths, collection, fields, prune)
    except SupportbotError as e:
        raise _fail(e) from e
    except KeyboardInterrupt:
        err.print("interrupted: everything committed so far is kept; re-run to finish.")
        raise typer.Exit(130) from None
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        for problem in report.errors:
            where = (f"{problem['source']}:{problem['line']}" if problem["line"]
                     else problem["source"])
            err.print(f"[yellow]skipped[/yellow] {where}: {problem['error']}", highlight=False)
        out.print(
            f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
            f"deleted {report.deleted}, skipped {report.skipped} unresolved, "
            f"failed {report.failed}; embedded {report.chunks_embedded} chunks "
            f"({report.tokens_embedded} tokens) in {report.seconds:.1f}s", highlight=False)
    if report.failed:
        raise typer.Exit(1)


def _result_line(r: Any) -> dict[str, Any]:
    return {"article_id": r.article_id, "chunk_id": r.chunk_id, "title": r.title, "url": r.url,
            "score": r.score}


def _read_queries(path: Path) -> list[tuple[int, dict[str, Any]]]:
    from app.errors import SourceError
    from pipelines.loaders import iter_jsonl

    rows = []
    for n, row in iter_jsonl(path):
        if not isinstance(row, dict) or not str(row.get("question") or "").strip():
            raise SourceError(str(path), 'each line needs {"id": ..., "question": "..."}', n)
        rows.append((n, row))
    return rows


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="The question to search for.")] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="Results per query.")] = 5,
    queries: Annotated[Path | None, typer.Option(
        help='JSONL file of {"id","question"} lines (batch mode).')] = None,
    collection: Annotated[list[str] | None, typer.Option(help="Collection(s) to search.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    locale: Annotated[str | None, typer.Option(
        help="Only this locale (prefix, e.g. 'es').")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Search the knowledge base (hybrid dense + BM25)."""
    from app.knowledge.retriever import HybridRetriever

    if (query is None) == (queries is None):
        raise _fail(ValueError("give either a QUERY or --queries FILE.jsonl"))
    opts: dict[str, Any] = {"collections": tuple(collection or ["articles"]),
                            "category": category, "locale": locale}
    try:
        retriever = HybridRetriever(_kb())
        if queries is not None:
            rows = _read_queries(queries)
            questions = [str(r["question"]) for _, r in rows]
            for (n, row), results in zip(rows, retriever.search_many(questions, k, **opts),
                                         strict=True):
                qid = row.get("id", n)
                typer.echo(json.dumps({"id": qid, "results": [_result_line(r) for r in results]},
                                      ensure_ascii=False))
            return
        assert query is not None
        results = retriever.search(query, k, **opts)
    except (SupportbotError, ValueError) as e:
        raise _fail(e) from e
    if as_json:
        typer.echo(json.dumps({"query": query, "results": [r.to_dict() for r in results]},
                              ensure_ascii=False))
        return
    if not results:
        out.print("no results (is the knowledge base ingested? try 'supportbot stats')")
        return
    table = Table("#", "article", "title", "score", "snippet")
    for i, r in enumerate(results, start=1):
        snippet = " ".join(r.snippet.split())[:90]
        table.add_row(str(i), r.article_id, r.title, f"{r.score:.4f}", snippet)
    out.print(table)


@app.command()
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What is indexed: documents and chunks per collection."""
    try:
        info = _kb().stats()
    except SupportbotError as e:
        raise _fail(e) from e
    if as_json:
        typer.echo(json.dumps(info))
        return
    out.print(f"data dir: {info['data_dir']}  chroma: {info['chroma']}", highlight=False)
    for name, c in info["collections"].items():
        out.print(f"{name}: {c['documents']} documents, {c['chunks']} chunks")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from app.logs import configure
    from app.main import create_app

    settings = get_settings()
    configure(settings.log_level)
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port,
                log_level=settings.log_level)


@eval_app.command("retrieval")
def eval_retrieval(
    questions: Annotated[Path, typer.Option(
        help="JSONL with question and gold_article_ids.")] = Path(
        "knowledge/eval/retrieval_questions.jsonl"),
    k: Annotated[int, typer.Option(min=1, max=100)] = 10,
    modes: Annotated[str, typer.Option(help="Comma-separated: lexical,dense,hybrid.")] =
        "lexical,dense,hybrid",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Recall@1/@5/@k and MRR of each retrieval mode on labelled questions."""
    from eval.retrieval import evaluate_retrieval, load_questions

    try:
        rows = load_questions(questions)
        report = evaluate_retrieval(_kb(), rows, k, [m.strip() for m in modes.split(",")])
    except (SupportbotError, ValueError) as e:
        raise _fail(e) from e
    if as_json:
        typer.echo(json.dumps(report))
        return
    table = Table("mode", "n", "recall@1", "recall@5", f"recall@{k}", "MRR")
    for mode, m in report["modes"].items():
        table.add_row(mode, str(report["n"]), f"{m['recall@1']:.3f}", f"{m['recall@5']:.3f}",
                      f"{m[f'recall@{k}']:.3f}", f"{m['mrr']:.3f}")
    out.print(table)


@eval_app.command("run")
def eval_run(
    variants: Annotated[str, typer.Option(help="Comma-separated variants; the first is the "
                                          "control.")] = "control,concise_empathetic",
    dataset: Annotated[Path, typer.Option(help="Labelled cases (.jsonl or .csv).")] = Path(
        "knowledge/eval/cases.jsonl"),
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("eval-out"),
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume",
                                         help="Keep rows already in OUT.")] = True,
    ragas: Annotated[bool, typer.Option("--ragas/--no-ragas")] = True,
    live: Annotated[bool, typer.Option("--live/--no-live",
                                       help="Add the store's live A/B figures.")] = True,
) -> None:
    """Run every case through each variant and write report.md, report.html and tables."""
    from eval.experiment import run_experiment

    try:
        report = run_experiment(get_settings(), [v.strip() for v in variants.split(",")
                                                 if v.strip()], dataset, out, limit=limit,
                                resume=resume, ragas=ragas, live=live)
    except (SupportbotError, ValueError) as e:
        raise _fail(e) from e
    for line in report.headline:
        typer.echo(f"- {line}")
    typer.echo(f"report: {report.markdown} and {report.html}")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except BrokenPipeError:
        sys.exit(0)
