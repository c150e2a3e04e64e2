"""HTML tables become Markdown tables (one line per row, under its header), so the chunker,
BM25 and the extractive answer model see a row whole; layout tables stay ordinary blocks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever
from app.responder.providers.extractive import ExtractiveAnswerModel
from app.responder.responder import Responder, TurnInput
from app.responder.variants import DEFAULT_VARIANTS_PATH, load_variants
from pipelines.html import html_fragment_to_text, html_to_document
from pipelines.ingest import Ingester

PRICING = """
<h2>Plans</h2>
<p>Every plan includes unlimited texts.</p>
<table class="plans">
  <caption>Monthly plans (12-month contract)</caption>
  <thead><tr><th>Plan</th><th>Data</th><th>Monthly  price</th></tr></thead>
  <tbody>
    <tr><td>Starter</td><td>5GB</td><td>£8.00</td></tr>
    <tr><td>Plus</td><td>
        30GB
      </td><td>£12.50</td></tr>
    <tr><td>Unlimited</td><td>Unlimited</td><td>£20.00</td></tr>
  </tbody>
</table>
<p>Prices include VAT.</p>
"""


def table_of(html: str) -> list[str]:
    """The Markdown table lines (``|`` rows) of ``html``'s text."""
    return [line for line in html_fragment_to_text(html).splitlines() if line.startswith("|")]


def test_pricing_table_is_a_markdown_table_with_its_caption_and_header() -> None:
    lines = html_fragment_to_text(PRICING).splitlines()
    start = lines.index("Monthly plans (12-month contract)")
    assert lines[start + 1:start + 6] == [
        "| Plan | Data | Monthly price |",
        "| --- | --- | --- |",
        "| Starter | 5GB | £8.00 |",
        "| Plus | 30GB | £12.50 |",
        "| Unlimited | Unlimited | £20.00 |",
    ]
    # A blank line before and after: the table is a block of its own.
    assert lines[start - 1] == "" and lines[start + 6] == ""
    assert lines[:2] == ["## Plans", "Every plan includes unlimited texts."]
    assert lines[-1] == "Prices include VAT."


def test_table_without_thead_takes_its_first_row_as_the_header() -> None:
    assert table_of("<table><tr><td>Use</td><td>Price</td></tr>"
                    "<tr><td>Calls</td><td>£2.00 a minute</td></tr>"
                    "<tr><td>Texts</td><td>60p</td></tr></table>") == [
        "| Use | Price |", "| --- | --- |", "| Calls | £2.00 a minute |", "| Texts | 60p |"]
    # Leading rows of <th> cells are the header too, and a footer row comes last.
    assert table_of("<table><tfoot><tr><td>Total</td><td>£3</td></tr></tfoot>"
                    "<tr><th>Item</th><th>Cost</th></tr>"
                    "<tr><th>Fee</th><td>£3</td></tr></table>") == [
        "| Item | Cost |", "| --- | --- |", "| Fee | £3 |", "| Total | £3 |"]


def test_colspan_and_rowspan_keep_every_row_as_wide_as_the_header() -> None:
    lines = table_of("""<table>
      <thead>
        <tr><th rowspan="2">Zone</th><th colspan="2">Daily price</th></tr>
        <tr><th>Unlimited Max</th><th>Other plans</th></tr>
      </thead>
      <tr><td>Zone 1</td><td>Included</td><td>£2.40</td></tr>
      <tr><td>Zone 3</td><td colspan="2">No Travel Pass</td></tr>
      <tr><td rowspan="2">Zone 4</td><td>£9</td><td>£9</td></tr>
      <tr><td>£10</td><td colspan="999">£11</td></tr>
    </table>""")
    assert lines == [
        "| Zone | Daily price Unlimited Max | Daily price Other plans |",
        "| --- | --- | --- |",
        "| Zone 1 | Included | £2.40 |",
        "| Zone 3 | No Travel Pass |  |",
        "| Zone 4 | £9 | £9 |",
        "| Zone 4 | £10 | £11 |",
    ]
    assert {line.count(" | ") for line in lines} == {2}


def test_pipes_in_a_cell_are_escaped() -> None:
    assert table_of("<table><tr><th>Shortcut</th><th>Does</th></tr>"
                    "<tr><td>a | b</td><td>splits</td></tr></table>")[2] == r"| a \| b | splits |"


def test_links_and_nested_blocks_in_a_cell_are_its_text_on_one_line() -> None:
    lines = table_of("""<table>
      <tr><th>Topic</th><th>Where</th></tr>
      <tr><td><p>Refunds</p></td>
          <td>See <a href="/refunds">our <b>refund</b> policy</a>
              <ul><li>Online</li><li>In store</li></ul><img src="tick.svg" alt="Yes"></td></tr>
    </table>""")
    assert lines[2] == "| Refunds | See our refund policy Online In store Yes |"


def test_layout_tables_stay_ordinary_blocks() -> None:
    text = html_fragment_to_text("""
      <table role="presentation"><tr><td><h2>Set-up</h2><p>Plug it in.</p></td></tr></table>
      <table><tr><td>Only one cell wraps this whole page.</td></tr></table>
      <table><tr>
        <td><h3>Before you start</h3><p>Charge the lamp.</p><p>Open the app.</p></td>
        <td><ul><li>Unplug the hub.</li></ul><p>Then wait.</p><p>Ten seconds.</p>
            <table><tr><th>Light</th><th>Means</th></tr>
                   <tr><td>Red</td><td>Fault</td></tr></table></td>
      </tr></table>""")
    assert text.splitlines() == [
        "## Set-up", "Plug it in.", "Only one cell wraps this whole page.",
        "", "### Before you start", "Charge the lamp.", "Open the app.",
        "- Unplug the hub.", "Then wait.", "Ten seconds.",
        "", "| Light | Means |", "| --- | --- |", "| Red | Fault |",
    ]


def test_empty_tables_are_dropped_and_chrome_in_cells_stays_out() -> None:
    text = html_fragment_to_text("""<p>Before.</p>
      <table><caption>Nothing here</caption><tr><td> </td><td></td></tr><tr></tr></table>
      <table><tr><th>Plan</th><th>Price<script>track("SCRIPTCELL")</script></th></tr>
             <tr><td>Basic<button>Buy now</button></td><td>£5
                 <form hidden><label>FORMCELL</label></form></td></tr></table>
      <p>After.</p>""")
    assert "Nothing here" not in text
    assert text.splitlines() == ["Before.", "", "| Plan | Price |", "| --- | --- |",
                                 "| Basic | £5 |", "", "After."]


def test_a_page_with_a_table_keeps_its_article_text() -> None:
    doc = html_to_document(
        "<html><body><nav>NAVTEXT</nav><article><h1>Roaming</h1>" + PRICING
        + "</article><footer>FOOTERTEXT</footer></body></html>", "roaming")
    assert "| Plus | 30GB | £12.50 |" in doc.text.splitlines()
    assert "NAVTEXT" not in doc.text and "FOOTERTEXT" not in doc.text


# ---- end to end: an ingested page's table row answers a question ------------------------

EXTRAS_PAGE = """<!DOCTYPE html><html lang="en"><head><title>Broadband extras | Help</title>
<meta name="article-id" content="broadband-extras"></head><body><main><article>
<h1>Broadband extras</h1>
<p>You can add extras to any broadband plan in the app.</p>
<h2>Extras and prices</h2>
<table>
  <thead><tr><th>Extra</th><th>Monthly price</th><th>Notes</th></tr></thead>
  <tbody>
    <tr><td>Wi-Fi Disc</td><td>£5.00 each</td><td>Up to 3 per home</td></tr>
    <tr><td>Perch TV box</td><td>£8.00</td><td>Includes the TV guide</td></tr>
    <tr><td>Static IP address</td><td>£4.00</td><td>Business plans only</td></tr>
  </tbody>
</table>
<p>Extras don't change your contract end date.</p>
</article></main></body></html>"""

OTHER_PAGES = {
    "moving-home": ("Moving home", "Tell us at least 14 days before you move. We move your "
                    "broadband to your new address and keep your contract."),
    "pay-your-bill": ("Pay your bill", "Pay by Direct Debit, debit card or bank transfer. "
                      "Your bill is ready on the same day each month."),
}


def test_an_ingested_table_row_is_answered_with_its_header(
        make_kb: Callable[..., KnowledgeBase], tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "broadband-extras.html").write_text(EXTRAS_PAGE, encoding="utf-8")
    for slug, (title, body) in OTHER_PAGES.items():
        (articles / f"{slug}.html").write_text(
            f"<html><body><article><h1>{title}</h1><p>{body}</p></article></body></html>",
            encoding="utf-8")
    kb = make_kb()
    Ingester(kb, progress=False).run([articles], "articles")
    responder = Responder(HybridRetriever(kb), kb.embedder.embed_query, ExtractiveAnswerModel())
    reply = responder.respond(TurnInput("How much does a Perch TV box cost each month?",
                                        load_variants(DEFAULT_VARIANTS_PATH).get("control")))
    assert reply.cited_article_ids == ["broadband-extras"]
    lines = reply.text.splitlines()
    header = lines.index("| Extra | Monthly price | Notes |")
    assert lines[header + 1].replace(" ", "").strip("|").split("|") == ["---"] * 3
    assert "| Perch TV box | £8.00 | Includes the TV guide |" in lines[header + 2:]
