"""HTML to article text: keep the article body (headings as Markdown), drop the page chrome."""

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


def _to_markdown(root: Tag) -> str:
    lines: list[str] = []
    for el in root.find_all(["h1", "h2", "h3", "h4", "p", "li", "pre", "td", "th", "blockquote"]):
        if el.find_parent(["li", "p", "pre", "td", "th", "blockquote"]) is not None:
            continue  # nested: its text is taken with the parent
        text = " ".join(el.get_text(" ", strip=True).split())
        if not text:
            continue
        name = el.name
        if name in ("h1", "h2", "h3", "h4"):
            lines.append("\n" + "#" * int(name[1]) + " " + text)
        elif name == "li":
            parent = el.find_parent(["ol", "ul"])
            if parent is not None and parent.name == "ol":
                index = len(el.find_previous_siblings("li")) + 1
                lines.append(f"{index}. {text}")
            else:
                lines.append(f"- {text}")
        else:
            lines.append(text)
    return "\n".join(lines).strip()


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
