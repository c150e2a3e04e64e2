"""Loaders: every supported format, and every way a record can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import SourceError
from pipelines.documents import SourceDocument
from pipelines.loaders import FieldMap, load_file, walk


def load(path: Path, fields: FieldMap = FieldMap()) -> list[SourceDocument | SourceError]:
    return list(load_file(path, fields))


def docs_of(items: list[SourceDocument | SourceError]) -> list[SourceDocument]:
    return [i for i in items if isinstance(i, SourceDocument)]


def errors_of(items: list[SourceDocument | SourceError]) -> list[SourceError]:
    return [i for i in items if isinstance(i, SourceError)]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---- Markdown ------------------------------------------------------------------------------

def test_markdown_front_matter_sets_every_field(tmp_path: Path) -> None:
    path = tmp_path / "file-name-is-not-the-id.md"
    path.write_text(
        "---\n"
        "id: double-charge\n"
        "title: I was charged twice for one order\n"
        "url: https://help.lumen.example/articles/double-charge\n"
        "category: billing\n"
        "tags: [billing, refunds]\n"
        "locale: en-US\n"
        "updated_at: 2026-09-30\n"
        "author: someone\n"
        "---\n\n"
        "Seeing two charges? Read on.\n\n## Check these first\n\nIs one of them pending?\n",
        encoding="utf-8",
    )
    [doc] = load(path)
    assert isinstance(doc, SourceDocument)
    assert doc.id == "double-charge"
    assert doc.title == "I was charged twice for one order"
    assert doc.url == "https://help.lumen.example/articles/double-charge"
    assert doc.source == str(path)
    assert doc.fmt == "markdown"
    assert doc.metadata == {"category": "billing", "tags": ["billing", "refunds"],
                            "locale": "en-US", "updated_at": "2026-09-30"}
    assert doc.text.startswith("Seeing two charges?")
    assert "## Check these first" in doc.text
    assert "category:" not in doc.text and "---" not in doc.text


def test_markdown_tags_as_a_comma_separated_string(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("---\ntags: billing, refunds; gift cards\n---\nBody.\n", encoding="utf-8")
    [doc] = docs_of(load(path))
    assert doc.metadata["tags"] == ["billing", "refunds", "gift cards"]


def test_markdown_without_front_matter_uses_file_name_and_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "reset-your-password.md"
    path.write_text("Intro line before the heading.\n\n# Reset your password\n\n"
                    "## Steps\n\nClick 'Forgot password'.\n", encoding="utf-8")
    [doc] = load(path)
    assert isinstance(doc, SourceDocument)
    assert doc.id == "reset-your-password"
    assert doc.title == "Reset your password"
    assert doc.url == ""
    assert doc.metadata == {}
    assert doc.text.startswith("Intro line before the heading.")


def test_markdown_without_any_title_falls_back_to_the_id(tmp_path: Path) -> None:
    path = tmp_path / "no-heading.md"
    path.write_text("Only a paragraph, no heading at all.\n", encoding="utf-8")
    [doc] = docs_of(load(path))
    assert doc.title == "no-heading"


def test_markdown_invalid_yaml_front_matter_is_an_error_with_a_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_text("---\nid: x\ntitle: Broken: colon\ntags: [a, b\n---\n\nBody text.\n",
                    encoding="utf-8")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert err.source == str(path)
    assert err.line is not None and err.line >= 1
    assert "front matter" in err.reason
    assert str(err).startswith(f"{path}:{err.line}: ")


def test_markdown_yaml_error_points_at_the_offending_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    # file line 1: ---, line 2: id, line 3: title, line 4: the bad one
    path.write_text("---\nid: x\ntitle: fine\nurl: a: b\n---\n\nBody text.\n", encoding="utf-8")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert err.line == 4


@pytest.mark.parametrize("content", [
    "---\nid: empty\ntitle: Empty\n---\n",
    "---\nid: empty\ntitle: Empty\n---",
    "   \n\n",
])
def test_markdown_with_an_empty_body_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.md"
    path.write_text(content, encoding="utf-8")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert err.source == str(path)
    assert "empty" in err.reason


def test_front_matter_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "list.md"
    path.write_text("---\n- a\n- b\n---\nBody\n", encoding="utf-8")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert "mapping" in err.reason


def test_plain_text_file(tmp_path: Path) -> None:
    path = tmp_path / "opening-hours.txt"
    path.write_text("Opening hours\nWe answer chats from 8 am to 8 pm.\n", encoding="utf-8")
    [doc] = docs_of(load(path))
    assert (doc.id, doc.title, doc.fmt) == ("opening-hours", "Opening hours", "text")
    assert doc.text.endswith("8 pm.")


# ---- HTML ----------------------------------------------------------------------------------

HELP_PAGE = """<!DOCTYPE html>
<html lang="fr-CA">
<head>
  <title>Lamp reset | Lumen Help</title>
  <link rel="canonical" href="https://help.lumen.example/fr/articles/lamp-reset">
  <meta name="category" content="troubleshooting">
  <meta name="tags" content="lamp, reset">
  <script>var tracker = "SCRIPTHEAD";</script>
  <style>.x { color: red }</style>
</head>
<body>
  <div id="cookie-banner" class="cookie-banner">We use cookies COOKIEBANNER
    <button>Accept all</button></div>
  <header class="site-header"><a href="/">Lumen Help HEADERTEXT</a>
    <form><input name="q" placeholder="Search"></form></header>
  <nav><ul><li><a href="/orders">Orders NAVTEXT</a></li><li>Billing NAVTEXT</li></ul></nav>
  <div class="layout">
    <aside class="sidebar"><h3>Related SIDEBARTEXT</h3><ul><li>Other SIDEBARTEXT</li></ul></aside>
    <div class="breadcrumbs">Home BREADCRUMB &gt; Lamps</div>
    <article>
      <h1>Factory reset your lamp</h1>
      <p>Hold the <strong>power</strong> button for ten seconds.</p>
      <h2>Before you start</h2>
      <ul><li>Unplug the hub.</li><li>Keep the app open.</li></ul>
      <h2>Steps</h2>
      <ol><li>Turn the lamp off.</li><li>Hold the button.</li></ol>
      <h3>If it still fails</h3>
      <p>Contact support.</p>
    </article>
  </div>
  <footer>Copyright Lumen FOOTERTEXT</footer>
  <script>console.log("SCRIPTBODY")</script>
</body>
</html>
"""


def test_html_keeps_only_the_article(tmp_path: Path) -> None:
    path = tmp_path / "lamp-reset.html"
    path.write_text(HELP_PAGE, encoding="utf-8")
    [doc] = load(path)
    assert isinstance(doc, SourceDocument)
    for chrome in ("SCRIPTHEAD", "SCRIPTBODY", "COOKIEBANNER", "Accept all", "HEADERTEXT",
                   "NAVTEXT", "SIDEBARTEXT", "BREADCRUMB", "FOOTERTEXT", "color: red",
                   "Search"):
        assert chrome not in doc.text, chrome
    lines = doc.text.splitlines()
    assert "# Factory reset your lamp" in lines
    assert "## Before you start" in lines
    assert "## Steps" in lines
    assert "### If it still fails" in lines
    assert "Hold the power button for ten seconds." in lines
    assert "- Unplug the hub." in lines
    assert "1. Turn the lamp off." in lines and "2. Hold the button." in lines
    assert "Contact support." in lines
    assert doc.title == "Factory reset your lamp"
    assert doc.url == "https://help.lumen.example/fr/articles/lamp-reset"
    assert doc.metadata["locale"] == "fr-CA"
    assert doc.metadata["category"] == "troubleshooting"
    assert doc.metadata["tags"] == ["lamp", "reset"]
    assert doc.id == "lamp-reset"
    assert doc.source == str(path)
    assert doc.fmt == "markdown"


def test_html_article_id_meta_and_og_url(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        '<html><head><meta name="article-id" content="kettle-descale">'
        '<meta property="og:url" content="https://help.example.test/k">'
        '<meta property="og:title" content="Descale your kettle"></head>'
        "<body><main><p>Use vinegar.</p></main></body></html>", encoding="utf-8")
    [doc] = docs_of(load(path))
    assert (doc.id, doc.title, doc.url) == ("kettle-descale", "Descale your kettle",
                                            "https://help.example.test/k")
    assert doc.text == "Use vinegar."


def test_html_title_comes_from_the_article_not_the_site_header(tmp_path: Path) -> None:
    path = tmp_path / "reset.html"
    path.write_text(
        "<html><head><title>Reset your lamp | Lumen Help</title></head><body>"
        '<header><h1 class="logo">Lumen Help Center</h1></header>'
        "<article><h1>Reset your lamp</h1><p>Hold the button.</p></article></body></html>",
        encoding="utf-8")
    [doc] = docs_of(load(path))
    assert "Lumen Help Center" not in doc.text
    assert doc.title == "Reset your lamp"


def test_html_without_article_text_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "blank.html"
    path.write_text("<html><body><nav>Only navigation</nav><script>x()</script></body></html>",
                    encoding="utf-8")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert err.source == str(path)


# ---- JSON / JSONL --------------------------------------------------------------------------

RECORDS = [
    {"id": "a1", "title": "First", "text": "First body.", "url": "https://x.test/a1",
     "category": "billing"},
    {"id": "a2", "title": "Second", "body": "Second body."},
]


@pytest.mark.parametrize("payload", [
    RECORDS,
    {"articles": RECORDS},
    {"data": RECORDS},
], ids=["list", "articles-key", "data-key"])
def test_json_containers(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    docs = docs_of(load(path))
    assert [(d.id, d.title, d.text, d.line) for d in docs] == [
        ("a1", "First", "First body.", 1), ("a2", "Second", "Second body.", 2)]
    assert docs[0].url == "https://x.test/a1"
    assert docs[0].metadata == {"category": "billing"}
    assert all(d.source == str(path) for d in docs)


def test_json_single_object(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"id": "solo", "title": "Solo", "content": "Just one."}),
                    encoding="utf-8")
    [doc] = load(path)
    assert isinstance(doc, SourceDocument)
    assert (doc.id, doc.title, doc.text) == ("solo", "Solo", "Just one.")


def test_malformed_json_file_is_one_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"id": "a", "text": "x"},\n  {"id": "b" "text": "y"}\n]\n',
                    encoding="utf-8")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert (err.source, err.line) == (str(path), 3)
    assert "malformed JSON" in err.reason


def test_jsonl_malformed_line_is_reported_and_other_lines_still_load(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "articles.jsonl", [
        json.dumps({"id": "one", "text": "Line one."}),
        '{"id": "two", "text": "unterminated',
        "",
        json.dumps({"id": "three", "text": "Line four."}),
    ])
    items = load(path)
    [err] = errors_of(items)
    assert err.source == str(path)
    assert err.line == 2
    assert str(err).startswith(f"{path}:2: ")
    assert [(d.id, d.line) for d in docs_of(items)] == [("one", 1), ("three", 4)]


def test_jsonl_missing_id_missing_text_and_empty_text(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [
        json.dumps({"title": "No id", "text": "Some text."}),
        json.dumps({"id": "no-text", "title": "No text"}),
        json.dumps({"id": "empty-text", "text": "   "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "fine", "text": "Fine."}),
    ])
    items = load(path)
    errors = {e.line: e for e in errors_of(items)}
    assert set(errors) == {1, 2, 3, 4}
    assert all(e.source == str(path) for e in errors.values())
    assert "missing id" in errors[1].reason
    assert "no text field" in errors[2].reason and "no-text" in errors[2].reason
    assert "empty text" in errors[3].reason and "empty-text" in errors[3].reason
    assert "JSON object" in errors[4].reason
    assert [(d.id, d.line) for d in docs_of(items)] == [("fine", 5)]


def test_a_missing_title_falls_back_to_the_id(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [json.dumps({"id": "untitled", "text": "Body."})])
    [doc] = docs_of(load(path))
    assert doc.title == "untitled"


def test_field_map_selects_custom_fields(tmp_path: Path) -> None:
    record = {"key": "kb-7", "heading": "Custom heading", "content_md": "Custom body.",
              "link": "https://x.test/ignored", "canonical": "https://x.test/kb-7",
              "text": "the default text field, which must be ignored"}
    path = write_jsonl(tmp_path / "custom.jsonl", [json.dumps(record)])
    fields = FieldMap(id_field="key", text_field="content_md", title_field="heading",
                      url_field="canonical")
    [doc] = docs_of(load(path, fields))
    assert (doc.id, doc.title, doc.text, doc.url) == (
        "kb-7", "Custom heading", "Custom body.", "https://x.test/kb-7")
    # Without the mapping the id cannot be found.
    [err] = load(path)
    assert isinstance(err, SourceError) and "--id-field" in err.reason


def test_field_map_names_the_missing_custom_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "custom.jsonl", [json.dumps({"key": "k", "body": "x"})])
    [err] = load(path, FieldMap(id_field="key", text_field="content_md"))
    assert isinstance(err, SourceError)
    assert "content_md" in err.reason and err.line == 1


def test_html_inside_a_json_text_field_becomes_markdown(tmp_path: Path) -> None:
    path = tmp_path / "zendesk.json"
    path.write_text(json.dumps({"articles": [{
        "id": 360001, "title": "Track an order", "html_url": "https://x.test/360001",
        "body": "<p>Open <b>Orders</b>.</p><h2>Statuses</h2><ul><li>Placed</li><li>Shipped</li>"
                "</ul><script>evil()</script>"}]}), encoding="utf-8")
    [doc] = docs_of(load(path))
    assert doc.id == "360001"
    assert doc.url == "https://x.test/360001"
    lines = doc.text.splitlines()
    assert lines[0].startswith("Open Orders")
    assert "## Statuses" in lines and "- Placed" in lines and "- Shipped" in lines
    assert "evil" not in doc.text and "<" not in doc.text


def test_conversation_turns_become_a_transcript(tmp_path: Path) -> None:
    record = {"conversation_id": "conv-1", "channel": "sms", "status": "resolved", "csat": 5,
              "article_ids": ["track-order"],
              "turns": [{"role": "customer", "text": "where is my parcel"},
                        {"role": "agent", "text": "It ships today."},
                        {"role": "user", "content": "thanks"},
                        {"role": "customer", "text": "   "}]}
    path = write_jsonl(tmp_path / "2026-08.jsonl", [json.dumps(record)])
    [doc] = docs_of(load(path))
    assert doc.id == "conv-1"
    assert doc.text == "Customer: where is my parcel\nAgent: It ships today.\nCustomer: thanks"
    assert doc.fmt == "text"
    assert doc.metadata["status"] == "resolved"
    assert doc.metadata["channel"] == "sms"
    assert doc.metadata["article_ids"] == ["track-order"]


# ---- CSV -----------------------------------------------------------------------------------

def test_csv_with_a_header_row(tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "id,title,body,url,category,tags\n"
        "faq-1,Opening hours,We answer 8am-8pm.,https://x.test/1,contact,\"a; b\"\n"
        "faq-2,,Second answer.,,,\n"
        "faq-3,Missing body,,,,\n",
        encoding="utf-8")
    items = load(path)
    docs = docs_of(items)
    assert [(d.id, d.title, d.text, d.line) for d in docs] == [
        ("faq-1", "Opening hours", "We answer 8am-8pm.", 2),
        ("faq-2", "faq-2", "Second answer.", 3)]
    assert docs[0].url == "https://x.test/1"
    assert docs[0].metadata == {"category": "contact", "tags": ["a", "b"]}
    [err] = errors_of(items)
    assert (err.source, err.line) == (str(path), 4)


def test_csv_field_map(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Article ID,Headline,Answer\nx-1,Custom,The answer.\n", encoding="utf-8")
    [doc] = docs_of(load(path, FieldMap(id_field="Article ID", title_field="Headline",
                                        text_field="Answer")))
    assert (doc.id, doc.title, doc.text) == ("x-1", "Custom", "The answer.")


def test_csv_quoted_multiline_field_keeps_its_line_break(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('id,title,text\nm-1,Multi,"First paragraph ends here.\nSecond one."\n',
                    encoding="utf-8")
    [doc] = docs_of(load(path))
    assert "here.Second" not in doc.text
    assert doc.text.split() == ["First", "paragraph", "ends", "here.", "Second", "one."]


# ---- encodings, formats, walking -----------------------------------------------------------

def test_unsupported_extension_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.docx"
    path.write_bytes(b"PK\x03\x04")
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert err.source == str(path)
    assert ".docx" in err.reason and ".md" in err.reason


@pytest.mark.parametrize("name", ["latin1.md", "latin1.jsonl", "latin1.csv", "latin1.html"])
def test_non_utf8_file_is_an_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes('{"id": "x", "text": "café crème"}\n'.encode("latin-1"))
    [err] = load(path)
    assert isinstance(err, SourceError)
    assert err.source == str(path)
    assert "UTF-8" in err.reason


@pytest.mark.parametrize("name,content", [
    ("excel.csv", "id,title,text\nbom-1,From Excel,Saved as CSV UTF-8.\n"),
    ("bom.md", "---\nid: bom-1\ntitle: From Excel\n---\nSaved as CSV UTF-8.\n"),
    ("bom.json", json.dumps([{"id": "bom-1", "title": "From Excel",
                              "text": "Saved as CSV UTF-8."}])),
])
def test_utf8_with_byte_order_mark_loads(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8-sig"))
    items = load(path)
    assert errors_of(items) == []
    [doc] = docs_of(items)
    assert (doc.id, doc.title, doc.text) == ("bom-1", "From Excel", "Saved as CSV UTF-8.")


def test_jsonl_line_separator_inside_a_string(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    records = [{"id": "ls", "text": "Copied from a web page\u2028with a line separator."},
               {"id": "after", "text": "Next record."}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                    encoding="utf-8")
    items = load(path)
    assert errors_of(items) == []
    assert [(d.id, d.line) for d in docs_of(items)] == [("ls", 1), ("after", 2)]


def test_walk_recurses_sorted_and_skips_hidden_and_unsupported(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    for rel in ["b.md", "a.json", "sub/deeper/c.html", "sub/d.csv", "sub/e.jsonl", "f.txt",
                ".hidden.md", ".git/config.md", "sub/.cache/x.json", "image.png", "notes.pdf"]:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    found = [p.relative_to(root).as_posix() for p in walk(root)]
    assert found == ["a.json", "b.md", "f.txt", "sub/d.csv", "sub/deeper/c.html", "sub/e.jsonl"]
    assert walk(root / "b.md") == [root / "b.md"]
