"""The offline answer model: a concise, grounded answer composed from the best article.

No generation, no network: it picks the passages of the best-matching article that answer the
question, keeps a procedure's numbered steps whole and in order, trims the rest to the
sentences that share the most meaning-bearing words with the question, and links the article.
The decision to clarify or escalate instead is the responder's (it sees the calibrated
confidence); this model only says what it would answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.knowledge.lexical import tokenize
from app.responder.providers.base import AnswerModel
from app.responder.types import AnswerRequest, ModelAnswer, Passage

_STEP = re.compile(r"^\s*(\d+)[.)]\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_EMPH = re.compile(r"(\*\*|__|`)")
_PROCEDURAL = re.compile(
    r"\b(how|steps?|where (do|can) i|can i|change|cancel|reset|update|set ?up|turn (on|off)|"
    r"add|remove|delete|start|request|print|get|redeem|apply|use|pause|switch|enable|make)\b",
    re.I)
_NEGATIVE = re.compile(
    r"\b(still|again|never|angry|frustrat|ridiculous|unacceptable|worst|terrible|annoy|upset|"
    r"waiting|late|missing|broken|damaged|wrong|charged twice|hacked|can'?t|won'?t|didn'?t)\w*",
    re.I)
WORD_LIMITS = {"standard": 130, "concise_empathetic": 75}


@dataclass
class _Unit:
    kind: str  # "step", "bullet" or "sentence"
    text: str
    pos: int
    group: int  # consecutive list items share a group
    number: int = 0  # a step's own number in the article


def _plain(text: str) -> str:
    return _EMPH.sub("", _LINK.sub(r"\1", text)).strip()


def _table_row(line: str) -> str:
    """A Markdown table row as a sentence ("Next-day: Next business day, $24.99."); the
    separator row disappears."""
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if all(re.fullmatch(r":?-{2,}:?", c) or not c for c in cells):
        return ""
    cells = [_plain(c) for c in cells if c]
    if len(cells) < 2:
        return cells[0] if cells else ""
    return f"{cells[0]}: {', '.join(cells[1:])}."


def split_units(text: str) -> list[_Unit]:
    """Numbered steps, bullets and sentences of a passage, in order."""
    units: list[_Unit] = []
    group = 0
    prev_kind = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|"):
            line = _table_row(line)
        if line.startswith("#"):
            heading = _plain(line.lstrip("#"))
            if heading:
                units.append(_Unit("heading", heading.rstrip(":") + ":", len(units), 0))
            prev_kind = ""
            continue
        if not line:
            prev_kind = ""
            continue
        step, bullet = _STEP.match(line), _BULLET.match(line)
        if step or bullet:
            kind = "step" if step else "bullet"
            if kind != prev_kind:
                group += 1
            body = step.group(2) if step else bullet.group(1)  # type: ignore[union-attr]
            number = int(step.group(1)) if step else 0
            units.append(_Unit(kind, _plain(body), len(units), group, number))
            prev_kind = kind
            continue
        prev_kind = ""
        for sentence in _SENTENCE_END.split(line):
            if sentence.strip():
                units.append(_Unit("sentence", _plain(sentence), len(units), 0))
    return units


def _overlap(query_terms: set[str], text: str) -> float:
    terms = set(tokenize([text])[0])
    return float(len(query_terms & terms))


def _first_sentence(text: str) -> str:
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def _select_from(question_terms: set[str], procedural: bool, units: list[_Unit],
                 word_limit: int, concise: bool) -> list[_Unit]:
    """From one passage: all of it if it fits, a whole step list for procedures, else the
    sentences sharing the most words with the question (in their original order). Concise
    answers keep each step's first sentence only, skip the lead-in and stop at 2 sentences."""
    scores = {u.pos: _overlap(question_terms, u.text) for u in units}
    steps = [u for u in units if u.kind == "step"]
    if steps and (procedural or max(scores[u.pos] for u in steps) > 0):
        best_group = max({u.group for u in steps},
                         key=lambda g: sum(scores[u.pos] for u in steps if u.group == g) + 0.01)
        chosen = [u for u in steps if u.group == best_group][:10]
        if chosen[-1].text.endswith(":"):
            chosen += [u for u in units if u.kind == "bullet" and u.group == chosen[-1].group + 1]
        lead = [u for u in units if u.kind == "sentence" and u.pos < chosen[0].pos]
        if lead and not concise:
            chosen = [max(lead, key=lambda u: (scores[u.pos], u.pos)), *chosen]
        if concise:
            chosen = [_Unit(u.kind, _first_sentence(u.text), u.pos, u.group, u.number)
                      if u.kind == "step" else u for u in chosen]
        return sorted(chosen, key=lambda u: u.pos)
    if not concise and sum(len(u.text.split()) for u in units) <= word_limit:
        return units
    prose = [u for u in units if u.kind != "heading"]
    ranked = sorted(prose, key=lambda u: (-scores[u.pos] - (0.5 if u.pos == units[0].pos else 0),
                                          u.pos))
    chosen, words = [], 0
    for u in ranked:
        n = len(u.text.split())
        if chosen and (words + n > word_limit or scores[u.pos] == 0):
            continue
        chosen.append(u)
        words += n
        if len(chosen) >= (2 if concise else 4):
            break
    return sorted(chosen, key=lambda u: u.pos)


def select_units(question: str, passages: list[Passage], word_limit: int,
                 concise: bool = False) -> list[_Unit]:
    """What to say: the most relevant passage (trimmed to ``word_limit`` words), topped up
    from the next passage of the same article when the first is very short prose."""
    terms = set(tokenize([question])[0])
    procedural = bool(_PROCEDURAL.search(question))
    chosen: list[_Unit] = []
    offset = groups = 0
    for passage in passages[:2]:
        units = split_units(passage.text)
        for u in units:
            u.pos += offset
            u.group += groups if u.group else 0
        offset += len(units) + 1
        groups += max((u.group for u in units), default=0) + 1
        budget = word_limit - sum(len(u.text.split()) for u in chosen)
        if units and budget > 15:
            chosen += _select_from(terms, procedural, units, budget, concise)
        if any(u.kind == "step" for u in chosen) or \
                sum(len(u.text.split()) for u in chosen) >= 40:
            break  # a procedure is answered whole; never splice a second one after it
    seen: set[str] = set()
    unique = []
    for u in chosen:  # neighbouring chunks overlap: say each line once
        if u.text not in seen:
            seen.add(u.text)
            unique.append(u)
    return unique


def _render(units: list[_Unit]) -> str:
    lines: list[str] = []
    step_no = 0
    group = -1
    for u in units:
        if u.kind == "heading":
            lines.append(u.text)
            group = -1
        elif u.kind == "step":
            if u.group != group:  # a new list starts its own numbering
                step_no, group = 0, u.group
            # Keep the article's numbering when the steps are contiguous; renumber otherwise.
            step_no = u.number if u.number == step_no + 1 else step_no + 1
            lines.append(f"{step_no}. {u.text}")
        elif u.kind == "bullet":
            lines.append(f"- {u.text}")
        else:
            if lines and not _STEP.match(lines[-1]) and not lines[-1].startswith("- ") \
                    and not lines[-1].endswith(":"):
                lines[-1] = f"{lines[-1]} {u.text}"
            else:
                lines.append(u.text)
    return "\n".join(lines)


def _opener(style: str, question: str) -> str:
    if style != "concise_empathetic":
        return ""
    if _NEGATIVE.search(question):
        return "I'm sorry about the hassle — let's get this sorted."
    return "Happy to help."


def section_run(passages: list[Passage]) -> list[Passage]:
    """The best passage joined by its neighbours from the same section (a procedure split
    across chunks is answered whole, in article order), then the other passages."""
    if not passages:
        return []
    best = passages[0]
    if not best.section:
        return _with_continuation(passages)
    same = {p.index: p for p in passages if p.section == best.section}
    lo = hi = best.index
    while lo - 1 in same:
        lo -= 1
    while hi + 1 in same:
        hi += 1
    run = [same[i] for i in range(lo, hi + 1)]
    merged = Passage(best.id, best.chunk_id, best.title, best.url,
                     "\n".join(p.text for p in run), best.score, best.collection,
                     best.confidence, best.section, lo)
    rest = [p for p in passages if p not in run]
    return _with_continuation([merged, *rest])


def _with_continuation(passages: list[Passage]) -> list[Passage]:
    """A short passage that points "below" is joined by the passage that follows it."""
    best = passages[0]
    if not re.search(r"\b(below|following|these steps)\b", best.text, re.I) or \
            len(best.text.split()) > 80:
        return passages
    follow = next((p for p in passages[1:] if p.index == best.index + 1), None)
    if follow is None:
        return passages
    merged = Passage(best.id, best.chunk_id, best.title, best.url,
                     f"{best.text}\n{follow.text}", best.score, best.collection,
                     best.confidence, best.section, best.index)
    return [merged, *[p for p in passages[1:] if p is not follow]]


class ExtractiveAnswerModel(AnswerModel):
    """Offline answers from the retrieved passages (used whenever no Claude key is set).

    Example:
        >>> model = ExtractiveAnswerModel()
        >>> model.answer(AnswerRequest("how do I reset my password", passages, "")).cited_ids
        ['reset-password']
    """

    name = "extractive"
    model_id = "extractive-v1"

    def answer(self, request: AnswerRequest) -> ModelAnswer:
        articles = [p for p in request.passages if p.collection == "articles"]
        if not articles:
            return ModelAnswer(
                text="I couldn't find anything in our help center that answers this.",
                cited_ids=[], provider=self.name, model=self.model_id, confidence=0.0)
        top = articles[0]
        same_article = section_run([p for p in articles if p.id == top.id])
        limit = WORD_LIMITS.get(request.style, WORD_LIMITS["standard"])
        concise = request.style == "concise_empathetic"
        units = select_units(request.question, same_article, limit, concise)
        body = _render(units) or _plain(top.text)
        opener = _opener(request.style, request.question)
        link = f"{top.title}: {top.url}" if top.url else top.title
        if concise:
            # The opener on its own line, so a numbered list below stays a list.
            text = f"{opener}\n{body}\n\nMore in {link}".strip()
        else:
            text = f"{body}\n\nFull article — {link}"
        return ModelAnswer(text=text, cited_ids=[top.id], provider=self.name,
                           model=self.model_id, confidence=top.confidence)
