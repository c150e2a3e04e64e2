"""``supportbot ingest``, ``search`` and ``stats``: the knowledge base, no store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.output import err, fail, out
from app.config import Settings, get_settings
from app.errors import SupportbotError

if TYPE_CHECKING:
    from app.container import Knowledge


def _knowledge() -> Knowledge:
    """The configured knowledge base and retriever (imported here: ``--help`` stays fast)."""
    from app.container import knowledge

    return knowledge(get_settings())


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
        report = Ingester(_knowledge().kb).run(paths, collection, fields, prune)
    except SupportbotError as e:
        raise fail(e) from e
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
    _prepare_query_embedder(get_settings())
    if report.failed:
        raise typer.Exit(1)


def _prepare_query_embedder(settings: Settings) -> None:
    """Export the model's query path to ONNX once (a few seconds), so ``supportbot serve``
    starts without importing torch; kept when current, redone when the model changes."""
    if settings.embedding_device != "cpu":
        return
    from app.knowledge.onnx_export import ensure_onnx_export

    try:
        ensure_onnx_export(settings)
    except SupportbotError as e:  # the server then embeds questions with torch: slower start
        err.print(f"[yellow]warning:[/yellow] no ONNX query export ({e})", highlight=False)


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
    if (query is None) == (queries is None):
        raise fail(ValueError("give either a QUERY or --queries FILE.jsonl"))
    opts: dict[str, Any] = {"collections": tuple(collection or ["articles"]),
                            "category": category, "locale": locale}
    try:
        retriever = _knowledge().retriever
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
        raise fail(e) from e
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


def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What is indexed: documents and chunks per collection."""
    try:
        info: dict[str, Any] = _knowledge().kb.stats()
    except SupportbotError as e:
        raise fail(e) from e
    if as_json:
        typer.echo(json.dumps(info))
        return
    out.print(f"data dir: {info['data_dir']}  chroma: {info['chroma']}", highlight=False)
    for name, c in info["collections"].items():
        out.print(f"{name}: {c['documents']} documents, {c['chunks']} chunks")
