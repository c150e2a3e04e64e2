"""The golden answers: hand-checked questions over the four help centers, through the engine.

``knowledge/eval/golden_answers.jsonl`` holds, for each question, its help center, the article
that must be cited (``also``: other articles that answer it as well, in the same words), the
facts (short strings written from the article) the answer must carry and, for some, strings it
must not (a fact from another section). Every question is answered
by both variant styles through ``ConversationService.answer`` (the production turn path) with
the offline extractive model, and every answer is checked for coherence against the cited
article's text: each sentence, bullet and table cell is said verbatim and whole; a list item
comes with the line that introduces it; no line starts mid-sentence; the concise style says a
part of what the standard style says (the same facts, never another number).

A question the engine clarifies or escalates fails here as a confidence problem: the golden
set only holds questions answered today, and asserts their facts strictly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.container import Components, build, scratch_store
from app.domain import Decision, Reply
from app.knowledge.base import KnowledgeBase
from app.knowledge.embedder import Embedder
from pipelines.documents import SourceDocument
from pipelines.ingest import Ingester
from pipelines.loaders import load_file, walk
from tests.conftest import KNOWLEDGE, settings_for

GOLDEN = KNOWLEDGE / "eval" / "golden_answers.jsonl"
ARTICLES = {"lumen": KNOWLEDGE / "articles",
            **{d: KNOWLEDGE / "benchmarks" / d / "articles" for d in ("saas", "bank", "telecom")}}
VARIANTS = ("control", "concise_empathetic")
MIN_PER_DOMAIN = 10

_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_EMPHASIS = re.compile(r"\*\*|__|`")
_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(“‘])")
_TABLE_RULE = re.compile(r"^\|(\s*:?-{2,}:?\s*\|)+$")
_NUMBER = re.compile(r"[£$€]?\d[\d,.:]*%?")


@dataclass(frozen=True)
class Golden:
    """One hand-checked question."""

    id: str
    domain: str
    question: str
    article: str
    facts: tuple[str, ...]
    forbidden: tuple[str, ...]
    shape: str
    also: tuple[str, ...] = ()

    @property
    def citable(self) -> tuple[str, ...]:
        return (self.article, *self.also)


def load_golden(path: Path = GOLDEN) -> list[Golden]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [Golden(r["id"], r["domain"], r["question"], r["article"], tuple(r["facts"]),
                   tuple(r.get("forbidden", ())), r.get("shape", ""), tuple(r.get("also", ())))
            for r in rows]


CASES = load_golden()


# ---- the cited article's text, as a reader sees it -----------------------------------------

def plain(text: str) -> str:
    return " ".join(_EMPHASIS.sub("", _LINK.sub(r"\1", text)).split())


@dataclass(frozen=True)
class Line:
    """One line of an article: its plain text, and whether it is a heading or a list item."""

    text: str
    heading: bool = False
    item: bool = False


def article_lines(doc: SourceDocument) -> list[Line]:
    lines = []
    for raw in doc.text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or re.fullmatch(r"\*\*[^*]+\*\*:?", stripped):
            lines.append(Line(plain(stripped.lstrip("#")).rstrip(":"), heading=True))
        elif _ITEM.match(raw):
            lines.append(Line(plain(_ITEM.sub("", raw)), item=True))
        else:
            lines.append(Line(plain(stripped)))
    return lines


_DOCS: dict[str, dict[str, SourceDocument]] = {}


def article(domain: str, article_id: str) -> SourceDocument:
    """The cited article as ingestion reads it (HTML pages turned into text)."""
    if domain not in _DOCS:
        _DOCS[domain] = {doc.id: doc for path in walk(ARTICLES[domain])
                         for doc in load_file(path) if isinstance(doc, SourceDocument)}
    return _DOCS[domain][article_id]


# ---- the checks ----------------------------------------------------------------------------

def body_of(reply: Reply, variant: str) -> list[str]:
    """The answer's own lines: without the concise style's opener and the article link."""
    lines = reply.text.strip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].startswith(("Full article — ",
                                                                     "More in "))):
        lines.pop()
    if variant == "concise_empathetic":
        opener = lines.pop(0)
        assert not re.search(r"\d", opener), f"the opener states a fact: {opener!r}"
    return [line for line in lines if line.strip()]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def is_whole_sentence(sentence: str, lines: list[Line]) -> bool:
    """``sentence`` appears in an article line from a sentence start to a sentence end."""
    for line in lines:
        start = line.text.find(sentence)
        while start >= 0:
            end = start + len(sentence)
            before, after = line.text[:start].rstrip(), line.text[end:]
            starts = not before or before.endswith((".", "!", "?", ":"))
            ends = not after or (after.startswith(" ") and sentence.endswith((".", "!", "?", ":")))
            if starts and ends:
                return True
            start = line.text.find(sentence, start + 1)
    return False


def lead_of(item: str, lines: list[Line]) -> list[str]:
    """What may introduce a list item: the line above its list (its last sentence when prose)
    and the heading of its section."""
    leads: list[str] = []
    for i, line in enumerate(lines):
        if line.item and (line.text == item or line.text.startswith(f"{item} ")):
            above = [x for x in lines[:i] if x.text and not x.item]
            if above:
                last = above[-1]
                leads.append(last.text if last.heading else _sentences(last.text)[-1])
            heading = [x for x in lines[:i] if x.heading]
            if heading:
                leads.append(heading[-1].text)
    return leads


def coherence_problems(body: list[str], lines: list[Line]) -> list[str]:
    """Everything in ``body`` that is not a whole sentence, item or table cell of the article,
    a list item said without what introduces it, and a line that starts mid-sentence."""
    problems = []
    text = "\n".join(x.text for x in lines)
    headings = {x.text for x in lines if x.heading}
    said: list[str] = []
    in_table = False
    for n, raw in enumerate(body):
        line = raw.strip()
        if line.startswith("|"):
            if _TABLE_RULE.match(line):
                continue
            if not in_table and not (n + 1 < len(body) and _TABLE_RULE.match(body[n + 1].strip())):
                problems.append(f"table row without its header: {line!r}")
            in_table = True
            problems += [f"table cell not in the article: {cell!r}"
                         for cell in (c.strip() for c in line.strip("|").split("|"))
                         if cell and cell not in text]
            continue
        in_table = False
        if line.endswith(":") and line[:-1] in headings:
            said.append(line[:-1])  # a heading that introduces the list below it
            continue
        item = _ITEM.match(raw)
        content = _ITEM.sub("", raw).strip()
        if item:
            leads = lead_of(content, lines)
            if not leads and not is_whole_sentence(content, lines):
                problems.append(f"item not in the article: {content!r}")
            elif leads and not any(lead in s for lead in leads for s in said):
                problems.append(f"item without its lead-in ({leads[0]!r}): {content!r}")
        else:
            if content[:1].islower():
                problems.append(f"line starts mid-sentence: {content!r}")
            if lead_of(content, lines):
                problems.append(f"list item said as prose: {content!r}")
        for sentence in _sentences(content) if not lead_of(content, lines) else [content]:
            if not is_whole_sentence(sentence, lines):
                problems.append(f"not a whole sentence of the article: {sentence!r}")
        said.append(content)
    return problems


def numbers(body: list[str]) -> set[str]:
    return {m.group(0).rstrip(".,:") for line in body for m in _NUMBER.finditer(line)}


def concise_outside_standard(concise: list[str], standard: list[str]) -> list[str]:
    """Sentences of the concise answer the standard answer doesn't say (a step may be cut to
    its first sentence)."""
    said = " ".join(_ITEM.sub("", line).strip() for line in standard)
    return [s for line in concise for s in _sentences(_ITEM.sub("", line).strip())
            if s not in said]


# ---- the engine, one per help center -------------------------------------------------------

@pytest.fixture(scope="session")
def engines(sample_kb: KnowledgeBase, embedder: Embedder,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Components]]:
    """An engine per help center: Lumen on the session's sample knowledge base, each benchmark
    domain's articles ingested into their own data directory."""
    with ExitStack() as stack:
        engines = {}
        for domain in ARTICLES:
            if domain == "lumen":
                kb = sample_kb
            else:
                settings = settings_for(tmp_path_factory.mktemp(f"golden-{domain}") / "data")
                kb = KnowledgeBase(settings, embedder=embedder)
                Ingester(kb, progress=False).run([ARTICLES[domain]], "articles")
            store = stack.enter_context(scratch_store(kb.settings))
            engines[domain] = stack.enter_context(build(kb.settings, kb=kb, store=store))
        yield engines


# ---- the golden set itself -----------------------------------------------------------------

def test_golden_set_spans_the_four_help_centers_and_both_kinds_of_answer() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    for domain in ARTICLES:
        assert sum(c.domain == domain for c in CASES) >= MIN_PER_DOMAIN, domain
    shapes = " ".join(c.shape for c in CASES)
    for shape in ("table", "list with lead-in", "steps", "faq", "long section"):
        assert shape in shapes


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_facts_are_the_articles_own_words(case: Golden) -> None:
    assert case.facts
    for cited in case.citable:
        text = "\n".join(x.text for x in article_lines(article(case.domain, cited)))
        for fact in case.facts:
            assert fact in text, f"{fact!r} is not in {cited}"


# ---- the answers ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden_answer(engines: dict[str, Components], case: Golden) -> None:
    bodies = {}
    for variant in VARIANTS:
        reply = engines[case.domain].conversations.answer(
            case.question, variant=variant, user_id=f"golden-{case.id}")
        assert reply.decision == Decision.ANSWER, (
            f"{variant}: {reply.decision} ({reply.reason}), confidence {reply.confidence:.2f}")
        cited = reply.cited_article_ids
        assert cited and cited[0] in case.citable, (variant, cited)
        lines = article_lines(article(case.domain, cited[0]))
        body = body_of(reply, variant)
        said = "\n".join(body)
        missing = [f for f in case.facts if f not in said]
        assert not missing, f"{variant} answer lacks {missing}:\n{reply.text}"
        wrong = [f for f in case.forbidden if f in said]
        assert not wrong, f"{variant} answer says {wrong}:\n{reply.text}"
        problems = coherence_problems(body, lines)
        assert not problems, f"{variant} answer:\n{reply.text}\n" + "\n".join(problems)
        bodies[variant] = body
    standard, concise = bodies["control"], bodies["concise_empathetic"]
    assert not concise_outside_standard(concise, standard), "\n".join(concise)
    assert numbers(concise) <= numbers(standard), numbers(concise) - numbers(standard)
