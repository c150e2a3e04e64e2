"""HTML to article text: keep the article body (headings, lists and tables as Markdown), drop the
page chrome."""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup, Tag

from pipelines.documents import SourceDocument

_CHROME = ["nav", "header", "footer", "aside", "script", "style", "noscript", "form", "iframe",
           "svg", "button"]
_BODY_HINT = re.compile(r"(article[-_]?body|article[-_]?content|post[-_]?content|main[-_]?content"
                        r"|entry[-_]?content)", re.I)
_NOISE_HINT = re.compile(r"(breadcrumb|sidebar|cookie|newsletter|share|related|comments?|menu"
                         r"|navbar|footer|header)", re.I)


def _main_element(soup: BeautifulSoup) -> Tag:
    body_hint: dict[str, Any] = {"class": _BODY_HINT}
    role_main: dict[str, Any] = {"role": "main"}
    for finder in (
        lambda: soup.find(None, body_hint) or soup.find(id=_BODY_HINT),
        lambda: soup.find("article"),
        lambda: soup.find("main") or soup.find(None, role_main),
        lambda: soup.body,
    ):
        found = finder()
        if isinstance(found, Tag):
            return found
    return soup


_HEADINGS = ("h1", "h2", "h3", "h4")
_BLOCKS = (*_HEADINGS, "p", "li", "pre", "blockquote")
# A block that holds its nested blocks (and tables) as its own text.
_CONTAINERS = ("li", "p", "pre", "blockquote")
# What a layout cell holds and a data cell doesn't: a heading, a table, a second paragraph.
_WHOLE_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "table")
_PARAGRAPHS = ("p", "pre", "blockquote")
_MAX_SPAN = 50  # a larger colspan or rowspan is a typo, not a table that wide


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _block_line(el: Tag) -> str | None:
    """One block (heading, paragraph, list item, ...) as a Markdown line; None when empty."""
    text = _collapse(el.get_text(" ", strip=True))
    if not text:
        return None
    if el.name in _HEADINGS:
        return "\n" + "#" * int(el.name[1]) + " " + text
    if el.name == "li":
        parent = el.find_parent(["ol", "ul"])
        if parent is not None and parent.name == "ol":
            return f"{len(el.find_previous_siblings('li')) + 1}. {text}"
        return f"- {text}"
    return text


def _rows(table: Tag) -> list[tuple[bool, list[Tag]]]:
    """The table's own rows (not a nested table's), each with whether it is a header row:
    ``<thead>`` rows, or without one the leading rows of ``<th>`` cells; ``<tfoot>`` last."""
    own = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    cells = [list(tr.find_all(["td", "th"], recursive=False)) for tr in own]
    groups = [tr.parent.name if isinstance(tr.parent, Tag) else "" for tr in own]
    if "thead" in groups:
        heads = [g == "thead" for g in groups]
    else:
        n = 0
        while n < len(own) and cells[n] and all(c.name == "th" for c in cells[n]):
            n += 1
        heads = [i < n for i in range(len(own))]
    rows = [(h, c) for h, c, g in zip(heads, cells, groups, strict=True) if c and g != "tfoot"]
    return rows + [(False, c) for c, g in zip(cells, groups, strict=True) if c and g == "tfoot"]


def _is_layout(table: Tag, rows: list[tuple[bool, list[Tag]]]) -> bool:
    """A table that only lays out the page: marked as such, a single cell, or a cell that
    holds whole blocks (a heading, a table, two paragraphs)."""
    if str(table.get("role") or "").lower() in ("presentation", "none"):
        return True
    cells = [c for _, row in rows for c in row]
    return len(cells) == 1 or any(
        c.find(_WHOLE_BLOCKS) is not None or len(c.find_all(_PARAGRAPHS)) > 1 for c in cells)


def _cell_text(cell: Tag) -> str:
    """A cell on one line: blocks flattened, links as their text, an icon as its alt text,
    pipes escaped."""
    for img in cell.find_all("img"):
        img.replace_with(f" {img.get('alt') or ''} ")
    return _collapse(cell.get_text(" ", strip=True)).replace("|", "\\|")


def _span(cell: Tag, attr: str) -> int:
    try:
        return min(max(int(str(cell.get(attr) or 1)), 1), _MAX_SPAN)
    except ValueError:
        return 1


def _grid(rows: list[tuple[bool, list[Tag]]]) -> list[list[str]]:
    """The cells' text laid out on a grid: a colspan cell repeated in header rows and left
    empty after its first column elsewhere, a rowspan cell repeated in the rows below."""
    grid: list[list[str]] = []
    below: dict[int, tuple[str, int]] = {}  # column -> (text, rows left) of a rowspan above
    for head, cells in rows:
        out: list[str] = []
        queue = list(cells)
        while queue or any(col >= len(out) for col in below):
            col = len(out)
            if col in below:
                text, left = below.pop(col)
                out.append(text)
                if left > 1:
                    below[col] = (text, left - 1)
            elif not queue:
                out.append("")
            else:
                cell = queue.pop(0)
                text, down = _cell_text(cell), _span(cell, "rowspan")
                for k in range(_span(cell, "colspan")):
                    value = text if head or k == 0 else ""
                    if down > 1:
                        below[len(out)] = (value, down - 1)
                    out.append(value)
        grid.append(out)
    width = max(len(r) for r in grid)
    grid = [r + [""] * (width - len(r)) for r in grid]
    keep = [c for c in range(width) if any(r[c] for r in grid)]
    return [[r[c] for c in keep] for r in grid]


def _header(rows: list[list[str]]) -> list[str]:
    """Header rows merged into one: each column's distinct labels, top to bottom."""
    merged = []
    for labels in zip(*rows, strict=True):
        said: list[str] = []
        for label in labels:
            if label and label not in said:
                said.append(label)
        merged.append(" ".join(said))
    return merged


def _table_lines(table: Tag) -> list[str] | None:
    """A data table as Markdown lines (its caption, the header row, the separator row, a line
    per row); [] for an empty table; None for a layout table."""
    rows = _rows(table)
    if not rows or _is_layout(table, rows):
        return None if rows else []
    grid = _grid(rows)
    kept = [(head, cells) for (head, _), cells in zip(rows, grid, strict=True) if any(cells)]
    if not kept:
        return []
    heads = [cells for head, cells in kept if head]
    body = [cells for head, cells in kept if not head]
    header = _header(heads) if heads else body.pop(0)
    caption = table.find("caption", recursive=False)
    title = _collapse(caption.get_text(" ", strip=True)) if isinstance(caption, Tag) else ""
    return ["", *([title] if title else []), *(
        "| " + " | ".join(cells) + " |" for cells in (header, ["---"] * len(header), *body)), ""]


def _to_markdown(root: Tag) -> str:
    """The blocks under ``root`` in page order, one line each; a data table as its rows."""
    lines: list[str] = []
    tables: dict[int, list[str] | None] = {}  # id(table) -> its lines; None: a layout table

    def table_lines(table: Tag) -> list[str] | None:
        if id(table) not in tables:
            tables[id(table)] = _table_lines(table)
        return tables[id(table)]

    for el in root.find_all([*_BLOCKS, "table", "td", "th"]):
        # Nested in a block or a data table: its text is taken with it.
        if any(p.name in _CONTAINERS or (p.name == "table" and table_lines(p) is not None)
               for p in el.parents):
            continue
        if el.name == "table":
            lines += table_lines(el) or []
        elif el.name in ("td", "th"):
            # A layout table's cell: its blocks are taken one by one, loose text as a line.
            if el.find([*_BLOCKS, "table"]) is None and (text := _block_line(el)):
                lines.append(text)
        elif text := _block_line(el):
            lines.append(text)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _strip_chrome(root: Any) -> None:
    for tag in root.find_all(_CHROME):
        tag.decompose()
    for tag in root.find_all(attrs={"class": _NOISE_HINT}):
        if tag.name not in ("body", "main", "article") and not _BODY_HINT.search(
            " ".join(tag.get("class") or [])
        ):
            tag.decompose()


def html_fragment_to_text(html: str) -> str:
    """An HTML fragment (e.g. a JSON field holding HTML) as Markdown-ish text."""
    soup = BeautifulSoup(html, "lxml")
    _strip_chrome(soup)
    return _to_markdown(soup) or soup.get_text(" ", strip=True)


def html_to_document(html: str, default_id: str) -> SourceDocument:
    """Parse a help-center page; raises ``ValueError`` when it has no article text."""
    soup = BeautifulSoup(html, "lxml")
    meta = {m.get("name") or m.get("property"): m.get("content")
            for m in soup.find_all("meta") if m.get("content")}
    canonical = soup.find("link", rel="canonical")
    href = canonical.get("href") if isinstance(canonical, Tag) else None
    url = href or meta.get("og:url") or ""
    page_title = soup.find("title")
    html_tag = soup.find("html")
    locale = html_tag.get("lang") if isinstance(html_tag, Tag) else None
    _strip_chrome(soup)
    main = _main_element(soup)
    # The article's own heading, not a site logo marked up as <h1> in the page header.
    heading = main.find("h1")
    title = meta.get("og:title") or (
        heading.get_text(" ", strip=True) if isinstance(heading, Tag)
        else re.split(r"\s[|–—-]\s", page_title.get_text(" ", strip=True))[0]
        if isinstance(page_title, Tag) else "")
    text = _to_markdown(main)
    if not text:
        raise ValueError("no article text found in the page body")
    metadata: dict[str, Any] = {}
    for key in ("category", "tags", "updated_at"):
        if meta.get(key):
            metadata[key] = meta[key] if key != "tags" else [
                t.strip() for t in str(meta[key]).split(",") if t.strip()]
    if locale:
        metadata["locale"] = str(locale)
    doc_id = meta.get("article-id") or meta.get("article:id") or default_id
    return SourceDocument(id=str(doc_id), text=text, title=str(title or ""), url=str(url),
                          fmt="markdown", metadata=metadata)
