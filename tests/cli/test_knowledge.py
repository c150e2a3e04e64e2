"""``supportbot ingest``, ``search`` and ``stats`` in-process through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from app.cli import app

SUMMARY_KEYS = {"added", "updated", "unchanged", "deleted", "chunks_embedded", "failed",
                "seconds"}
RESULT_KEYS = {"article_id", "chunk_id", "title", "url", "score"}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def squeezed(text: str) -> str:
    """Text without any whitespace (rich would hard-wrap non-terminal output without soft_wrap)."""
    return "".join(text.split())


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_ingest_json_summary_and_incremental_rerun(
    data_dir: Path, small_corpus: Path, small_corpus_ids: set[str],
) -> None:
    first = run_json("ingest", str(small_corpus), "--json")
    assert set(first) >= SUMMARY_KEYS
    assert first["added"] == len(small_corpus_ids)
    assert first["failed"] == 0 and first["chunks_embedded"] > 0
    assert (data_dir / "manifest.sqlite3").exists() and (data_dir / "chroma").is_dir()

    second = run_json("ingest", str(small_corpus), "--json")
    assert second["chunks_embedded"] == 0
    assert second["unchanged"] == len(small_corpus_ids)
    assert (second["added"], second["updated"], second["deleted"]) == (0, 0, 0)


def test_ingest_with_custom_field_names(data_dir: Path, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(json.dumps(r) for r in [
        {"key": "kb-1", "headline": "Gift wrapping", "answer_md": "Gift wrapping costs $4 per "
         "item and includes a handwritten card.", "permalink": "https://x.test/kb-1"},
        {"key": "kb-2", "headline": "Store pickup", "answer_md": "Orders placed before noon can "
         "be picked up the same day at any store.", "permalink": "https://x.test/kb-2"},
    ]) + "\n", encoding="utf-8")
    summary = run_json("ingest", str(export), "--id-field", "key", "--text-field", "answer_md",
                       "--title-field", "headline", "--url-field", "permalink", "--json")
    assert (summary["added"], summary["failed"]) == (2, 0)
    found = run_json("search", "how much does gift wrapping cost", "--k", "1", "--json")
    [hit] = found["results"]
    assert (hit["article_id"], hit["title"], hit["url"]) == (
        "kb-1", "Gift wrapping", "https://x.test/kb-1")


def bad_jsonl(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bad.jsonl"
    path.write_text(
        json.dumps({"id": "good-1", "title": "Gift card balance",
                    "text": "Check your gift card balance on the balance page."}) + "\n"
        + '{"id": "broken", "text": \n'
        + json.dumps({"title": "No id here", "text": "Orphan text."}) + "\n",
        encoding="utf-8")
    return path


def test_bad_input_fails_names_file_and_line_and_keeps_good_records(
    data_dir: Path, tmp_path: Path,
) -> None:
    path = bad_jsonl(tmp_path / "corpus")
    result = run("ingest", str(path), "--json")
    assert result.exit_code != 0
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["failed"]) == (1, 2)
    assert [(e["source"], e["line"]) for e in summary["errors"]] == [(str(path), 2),
                                                                      (str(path), 3)]
    stats = run_json("stats", "--json")
    assert stats["collections"]["articles"]["documents"] == 1
    hits = run_json("search", "gift card balance", "--k", "3", "--json")["results"]
    assert hits[0]["article_id"] == "good-1"


def test_bad_input_in_text_mode_names_file_and_line(data_dir: Path, tmp_path: Path) -> None:
    bad_jsonl(tmp_path / "corpus")
    result = run("ingest", "corpus")  # cwd is tmp_path
    assert result.exit_code != 0
    assert "corpus/bad.jsonl:2: malformed JSON" in result.stderr
    assert "corpus/bad.jsonl:3: missing id field" in result.stderr
    assert "added 1" in result.stdout


def test_error_locations_are_not_wrapped_for_long_paths(data_dir: Path, tmp_path: Path) -> None:
    deep = tmp_path / "exports" / "help-center-articles-exported-from-zendesk-2026-11-30"
    path = bad_jsonl(deep)
    assert len(str(path)) > 80
    result = run("ingest", str(path))
    assert result.exit_code != 0
    assert f"{path}:2: malformed JSON" in result.stderr


def test_search_json(data_dir: Path, small_corpus: Path) -> None:
    run_json("ingest", str(small_corpus), "--json")
    found = run_json("search", "how do I descale my kettle", "--k", "3", "--json")
    assert found["query"] == "how do I descale my kettle"
    results = found["results"]
    assert 1 <= len(results) <= 3
    assert results[0]["article_id"] == "kettle-care"
    assert set(results[0]) >= RESULT_KEYS
    assert len({r["article_id"] for r in results}) == len(results)


def test_batch_search_prints_one_line_per_query(data_dir: Path, small_corpus: Path,
                                                tmp_path: Path) -> None:
    run_json("ingest", str(small_corpus), "--json")
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"id": "q-kettle", "question": "kettle full of limescale"},
        {"id": 2, "question": "my lamp will not pair with the wifi"},
        {"id": "q-gift", "question": "how much is left on my gift card"},
    ]) + "\n\n", encoding="utf-8")
    result = run("search", "--queries", str(queries), "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == ["q-kettle", 2, "q-gift"]
    for row in rows:
        assert set(row) == {"id", "results"}
        assert 1 <= len(row["results"]) <= 3
        for hit in row["results"]:
            assert set(hit) == RESULT_KEYS
            assert isinstance(hit["score"], float)
    assert [r["results"][0]["article_id"] for r in rows] == [
        "kettle-care", "lamp-pairing", "gift-card-balance"]


def test_batch_search_with_a_bad_line_names_it(data_dir: Path, small_corpus: Path,
                                               tmp_path: Path) -> None:
    run_json("ingest", str(small_corpus), "--json")
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"id": "ok", "question": "kettle"}) + "\n"
                       + json.dumps({"id": "no-question"}) + "\n", encoding="utf-8")
    result = run("search", "--queries", str(queries), "--k", "3", "--json")
    assert result.exit_code != 0
    assert squeezed(f"{queries}:2:") in squeezed(result.stderr)
    assert "question" in result.stderr


def test_stats_json(data_dir: Path, small_corpus: Path, small_corpus_ids: set[str]) -> None:
    empty = run_json("stats", "--json")
    assert empty["collections"]["articles"] == {"documents": 0, "chunks": 0}
    summary = run_json("ingest", str(small_corpus), "--json")
    stats = run_json("stats", "--json")
    assert stats["data_dir"] == str(data_dir)
    assert stats["collections"]["articles"]["documents"] == len(small_corpus_ids)
    assert stats["collections"]["articles"]["chunks"] == summary["chunks_embedded"]
    assert stats["collections"]["conversations"] == {"documents": 0, "chunks": 0}


def test_usage_errors(data_dir: Path, tmp_path: Path) -> None:
    neither = run("search")
    assert neither.exit_code != 0
    missing = run("ingest", str(tmp_path / "nowhere"))
    assert missing.exit_code != 0
    assert squeezed(f"{tmp_path / 'nowhere'}: no such file or directory") in squeezed(
        missing.stderr)
    wrong = run("ingest", str(tmp_path), "--collection", "faqs")
    assert wrong.exit_code != 0
    assert squeezed("unknown collection") in squeezed(wrong.stderr)
