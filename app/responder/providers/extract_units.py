"""What an extractive answer is made of: the units of one article's passages.

A unit is a whole sentence, a numbered step, a bullet, a table row or a heading, in article
order. Each unit knows what has to be said before it for it to make sense (``needs``): a list
item its lead-in ("You can return an item if:") or, without one, its section's heading; a
table row the table's header; a nested bullet its parent item; a sentence that opens with
"This" or "It" the sentence before it. The answer model picks units and their needs, so it
never says a bullet without its list's introduction nor a fragment of a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from app.responder.types import Passage

_STEP = re.compile(r"^(\s*)(\d+)[.)]\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*•]\s+(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(“‘])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_EMPH = re.compile(r"(\*\*|__|`)")
_LABEL = re.compile(r"^\*\*([^*]+)\*\*$")  # a bold line alone: a merged section's heading
_ENDS = re.compile(r"[.!?:;)\"'”’]$")
_REFERS = re.compile(r"^(This|That|These|Those|It|Its|They|Their|Both|Otherwise|Then|If so|"
                     r"If not|Once it)\b")
_LINKS_ONLY = re.compile(r"^(related|see also|more help|related (articles|pages|topics))$", re.I)
_TABLE_RULE = re.compile(r":?-{2,}:?")
# Sentences that only point elsewhere ("See Refund timeline.") or describe the page itself.
_POINTER = re.compile(r"^(See|Learn more|More (on|in|about)|For more|Full steps are|Details( and "
                      r"exceptions)? are|This (article|page|section|guide)|Here's|Here is)\b")
SHORT_LEAD = 5  # a lead-in this short ("The only exception:") takes the sentence before it


@dataclass(frozen=True)
class Unit:
    """One sayable piece of an article.

    ``kind``: heading, sentence, step, bullet, header (a table's first row) or row; ``cells``
    for table rows; ``needs``: positions of the units said before this one; ``block``: units
    of one paragraph, list or table share it; ``rank``: the rank of the passage it comes from
    (0 for the passage that matches the question best); ``sayable``: False for text that is no
    sentence (a label line, the cells of a table flattened one per line).
    """

    kind: str
    text: str
    pos: int
    block: int
    section: str
    needs: tuple[int, ...] = ()
    number: int = 0
    depth: int = 0
    rank: int = 0
    cells: tuple[str, ...] = ()
    sayable: bool = True

    @property
    def words(self) -> int:
        return len(self.text.split())

    def first_sentence(self) -> Unit:
        """The unit cut to its first sentence (a concise answer's step)."""
        return replace(self, text=_SENTENCE_END.split(self.text, maxsplit=1)[0])


def plain(text: str) -> str:
    """Markdown links and emphasis dropped, whitespace collapsed."""
    return " ".join(_EMPH.sub("", _LINK.sub(r"\1", text)).split())


def sentences(line: str) -> list[str]:
    return [s for s in (x.strip() for x in _SENTENCE_END.split(line)) if s]


def article_lines(passages: list[Passage]) -> list[tuple[str, int]]:
    """The lines of one article's passages in article order, each with its passage's rank.

    Neighbouring passages overlap, so the lines a passage repeats from the one before it are
    said once. A passage from another section starts with that section's heading (the chunks
    carry it apart from their text), so a list cut off from its own lead-in is introduced by
    its section; a gap between passages that are not neighbours ends any paragraph or list.
    """
    rank = {p.chunk_id: i for i, p in enumerate(passages)}
    out: list[tuple[str, int]] = []
    prev: Passage | None = None
    for p in sorted({p.chunk_id: p for p in passages}.values(), key=lambda p: p.index):
        lines = p.text.splitlines()
        follows = prev is not None and p.index == prev.index + 1
        if follows and out:
            lines = lines[_overlap([line for line, _ in out[-len(lines):]], lines):]
            if lines:  # a passage's first line lost its indent: a nested item's, say
                lines[0] = _reindent(out[-1][0], lines[0])
        else:
            out.append(("", rank[p.chunk_id]))
        section = p.section.split(" > ")[-1].strip()
        same = follows and prev is not None and prev.section == p.section
        if section and not same and not (lines and lines[0].lstrip().startswith("#")):
            out.append((f"## {section}", rank[p.chunk_id]))
        out += [(line, rank[p.chunk_id]) for line in lines]
        prev = p
    return out


def _overlap(tail: list[str], lines: list[str]) -> int:
    """How many first lines of ``lines`` repeat the last lines of ``tail``."""
    for n in range(min(len(tail), len(lines)), 0, -1):
        if [t.strip() for t in tail[-n:]] == [x.strip() for x in lines[:n]]:
            return n
    return 0


def _item(line: str) -> tuple[str, int, str, int] | None:
    """A list item's kind, depth (from its indent), text and number; None for other lines."""
    step, bullet = _STEP.match(line), _BULLET.match(line)
    if step:
        indent, kind, body, number = step.group(1), "step", step.group(3), int(step.group(2))
    elif bullet:
        indent, kind, body, number = bullet.group(1), "bullet", bullet.group(2), 0
    else:
        return None
    return kind, int(len(indent.replace("\t", "    ")) >= 2), body, number


def _reindent(prev: str, line: str) -> str:
    """``line`` indented like ``prev`` when both are items of one kind of list."""
    before, now = _item(prev), _item(line)
    if before and now and before[0] == now[0]:
        return prev[:len(prev) - len(prev.lstrip())] + line.lstrip()
    return line


def _flattened_table(lines: list[str], i: int) -> int:
    """How many lines from ``i`` are the cells of a table written one per line (an HTML
    table turned into text): short lines, most without a full stop, at least four."""
    n = i
    while n < len(lines):
        line = lines[n].strip()
        if not line or line.startswith(("#", "|")) or _item(line) or _LABEL.match(line) or \
                len(line.split()) > 25:
            break
        n += 1
    run = [lines[k].strip() for k in range(i, n)]
    bare = [line for line in run if not _ENDS.search(plain(line)) and len(line.split()) <= 10]
    if len(run) >= 4 and len(bare) * 2 >= len(run) and run[0] in bare and run[1] in bare:
        return len(run)
    return 0


class _Builder:
    """Turns lines into units, keeping track of the heading and the open list or table."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.block = 0
        self.section = ""
        self.heading: int | None = None  # position of the current heading unit
        self.last_prose: int | None = None  # the sentence just before, for a lead-in
        self.list_kind = ""
        self.list_lead: tuple[int, ...] = ()
        self.parents: dict[int, int] = {}  # depth -> position of the open item at that depth
        self.header: int | None = None
        self.last_item: int | None = None  # the list item just before
        self.links_only = False  # a "Related articles" section: titles, nothing to say

    def add(self, kind: str, text: str, rank: int, needs: tuple[int, ...] = (), number: int = 0,
            depth: int = 0, cells: tuple[str, ...] = (), sayable: bool = True) -> Unit:
        unit = Unit(kind, text, len(self.units), self.block, self.section, needs, number, depth,
                    rank, cells, sayable and not self.links_only)
        self.units.append(unit)
        return unit

    def close(self) -> None:
        """End the open paragraph, list or table."""
        self.block += 1
        self.list_kind, self.list_lead, self.parents, self.header = "", (), {}, None
        self.last_item = None

    def lead_for_list(self) -> tuple[int, ...]:
        if self.last_prose is None:
            return (self.heading,) if self.heading is not None else ()
        lead = self.units[self.last_prose]
        return (*lead.needs, lead.pos)

    def heading_line(self, text: str, rank: int) -> None:
        self.close()
        self.section = text
        self.links_only = bool(_LINKS_ONLY.match(text))
        self.heading = self.add("heading", text, rank).pos
        self.last_prose = None
        self.close()

    def nesting(self, kind: str, body: str) -> int:
        """The depth of an item whose indent was lost (passages start flush left): under an
        item that ends with ":" ("6. Choose how you'll send it back:"), an item of another
        kind or one that goes on its sentence in lowercase; after a nested item, one like it."""
        if self.last_item is None:
            return 0
        prev = self.units[self.last_item]
        lower = body[:1].islower()
        if prev.text.endswith(":") and (kind != prev.kind or lower):
            return prev.depth + 1
        parent = self.parents.get(prev.depth - 1)
        if prev.depth and kind == prev.kind and parent is not None and \
                (kind != self.units[parent].kind or lower):
            return prev.depth
        return 0

    def item(self, kind: str, depth: int, body: str, number: int, rank: int) -> None:
        depth = depth or self.nesting(kind, plain(body))
        if depth and depth - 1 not in self.parents:
            depth = 0  # a nested item whose parent is in a passage we don't have
        if depth == 0 and kind != self.list_kind:
            lead = self.lead_for_list()
            self.close()
            self.list_kind, self.list_lead = kind, lead
            self.last_prose = None
        parent = self.parents.get(depth - 1) if depth else None
        needs = (*self.units[parent].needs, parent) if parent is not None else self.list_lead
        unit = self.add(kind, plain(body), rank, needs=needs, number=number, depth=depth)
        self.parents = {d: p for d, p in self.parents.items() if d < depth} | {depth: unit.pos}
        self.last_item = unit.pos

    def table_row(self, line: str, rank: int) -> None:
        # ``\|`` is a pipe inside a cell (HTML tables are written so): split on the others.
        row = line.strip().removeprefix("|")
        if row.endswith("|") and not row.endswith("\\|"):
            row = row[:-1]
        cells = tuple(plain(c.replace("\\|", "|")) for c in re.split(r"(?<!\\)\|", row))
        if all(_TABLE_RULE.fullmatch(c) or not c for c in cells):
            return
        if self.header is None:
            lead = self.lead_for_list()
            self.close()
            self.last_prose = None
            self.header = self.add("header", " | ".join(cells), rank, needs=lead,
                                   cells=cells).pos
            return
        needs = (*self.units[self.header].needs, self.header)
        self.add("row", " | ".join(c for c in cells if c), rank, needs=needs, cells=cells)

    def prose(self, line: str, rank: int, sayable: bool = True) -> None:
        self.close()
        prev: Unit | None = None
        for text in sentences(plain(line)):
            needs: tuple[int, ...] = ()
            if prev is not None and (_REFERS.match(text) or
                                     (text.endswith(":") and len(text.split()) < SHORT_LEAD)):
                needs = (*prev.needs, prev.pos)
            said = sayable and bool(_ENDS.search(text)) and not _POINTER.match(text)
            prev = self.add("sentence", text, rank, needs=needs, sayable=said)
        self.last_prose = prev.pos if prev is not None else None


def split_units(lines: list[tuple[str, int]]) -> list[Unit]:
    """The units of an article's lines (see ``article_lines``), in order."""
    b = _Builder()
    texts = [line for line, _ in lines]
    skip = 0
    for i, (raw, rank) in enumerate(lines):
        if skip:
            skip -= 1
            continue
        line = raw.rstrip()
        label = _LABEL.match(line.strip())
        if line.lstrip().startswith("#") or label:
            text = plain(label.group(1) if label else line.lstrip().lstrip("#"))
            if text:
                b.heading_line(text.rstrip(":"), rank)
        elif not line.strip():
            if not b.list_kind:  # a list goes on after a blank line; a table doesn't
                b.close()
        elif line.lstrip().startswith("|"):
            b.table_row(line, rank)
        elif item := _item(line):
            kind, depth, body, number = item
            b.item(kind, depth, body, number, rank)
        elif cells := _flattened_table(texts, i):
            for k in range(i, i + cells):
                b.prose(texts[k], rank, sayable=False)
            b.last_prose = None
            skip = cells - 1
        else:
            b.prose(line, rank)
    return b.units
