"""The offline answer model: a concise, grounded answer composed from the best article.

No generation, no network: the answer is made of whole units of the best-matching article's
passages (sentences, numbered steps, bullets, table rows; see ``extract_units``), each with
what must be said before it (a list's lead-in, a table's header), picked by how much they share
with the question. A procedure is given whole and in order. The variant's style only wraps and
shortens: a concise answer says a part of what the standard answer says (its first pieces,
steps cut to their first sentence), never anything else, so the facts it gives are the
standard answer's. The decision to clarify or escalate instead is the responder's (it sees the
calibrated confidence); this model only says what it would answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from app.knowledge.lexical import tokenize
from app.responder.providers.base import AnswerModel
from app.responder.providers.extract_units import Unit, article_lines, plain, split_units
from app.responder.types import AnswerRequest, ModelAnswer, Passage

_PROCEDURAL = re.compile(
    r"\b(how|steps?|where (do|can) i|change|cancel|"
    r"reset|update|set ?up|turn (on|off)|add|remove|delete|start|request|print|redeem|apply|"
    r"pause|switch|enable|make)\b", re.I)
_NEGATIVE = re.compile(
    r"\b(still|again|never|angry|frustrat|ridiculous|unacceptable|worst|terrible|annoy|upset|"
    r"waiting|late|missing|broken|damaged|wrong|charged twice|hacked|can'?t|won'?t|didn'?t)\w*",
    re.I)
# What kind of fact the question asks for (an amount, a time, a frequency, a number), and how
# a unit that states one looks.
_FACT_KINDS = [
    # "how much" asks for a price, but not in "how much notice / time / data"
    (re.compile(r"\b(how much(?!\s+(notice|time|longer|warning|data)\b)|cost|costs|price"
                r"|prices|fees?|charge[sd]?|rate|interest)\b", re.I),
     re.compile(r"[£$€]\s?\d|\d%")),
    (re.compile(r"\b(how (long|soon|quickly)|when|days?|expire|deadline|until|time)\b", re.I),
     re.compile(r"\b\d+\s*(–|-|to)?\s*\d*\s*(minutes?|hours?|(working |business )?days?|weeks?|"
                r"months?|years?)\b|\b(next|same) (working |business )?day\b|\bimmediately\b|"
                r"\bnever expire|\bdeadline\b", re.I)),
    (re.compile(r"\b(how often|often|frequency|every)\b", re.I),
     re.compile(r"\bevery\b|\b(once|twice) (a|per|in|each)\b|\b(daily|weekly|monthly|yearly)\b",
                re.I)),
    (re.compile(r"\b(how many|limits?|maximum|minimum|up to|at most|at least)\b", re.I),
     re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|once|twice)\b",
                re.I)),
]
# Words of the answer's body; a concise reply stays under about 80 words with its opener and link.
WORD_LIMITS = {"standard": 130, "concise_empathetic": 60}
MAX_PIECES = {"standard": 4, "concise_empathetic": 2}
RANK_BONUS = (0.3, 0.15, 0.05)  # the passages the retriever ranked first answer first
MAX_STEPS = 10
FACT_BONUS = 2.0
PARAGRAPH_WORDS = 80
STEP_NUDGE = 0.5
_ITEMS = ("step", "bullet", "row")
_HOW_DO_I = re.compile(r"^\W*(how (do|can|should|would) (i|we|you)|how to|steps?\b|where do i)",
                       re.I)
_HOW_MUCH = re.compile(r"\bhow (long|much|many|soon|often|quickly|far)\b", re.I)


# Words of how a question is asked, not of what it is about (BM25's stop words keep them).
_ASKING = frozenset(tokenize(["how do does did have has can could would should what when where "
                              "which who why much many long need get want know tell please "
                              "possible way still"])[0])


@lru_cache(maxsize=8192)
def _terms(text: str) -> frozenset[str]:
    return frozenset(tokenize([text])[0]) - _ASKING


@dataclass(frozen=True)
class _Scored:
    """Each unit's relevance to the question, and whether it says anything about it."""

    score: list[float]
    relevant: list[bool]
    procedural: bool = False  # a "how do I" question: a relevant procedure answers it


def score_units(question: str, units: list[Unit]) -> _Scored:
    """How well each unit answers ``question``.

    The question words the unit shares (words found in fewer units of the article weigh
    more), half the weight of those only its lead-in or heading has, a quarter of those only
    the rest of its paragraph, list or table has; a bonus for stating the kind of fact asked
    for (an amount, a time, a number); a nudge for the passages the retriever ranked first
    and, for "how do I" questions, for steps. A unit is relevant when it shares a word, or
    states the fact asked for under a lead-in or heading that does; a lead-in ("Here's what
    you'll see:") is said only with its list.
    """
    kinds = [fact for asks, fact in _FACT_KINDS if asks.search(question)]
    # The words that ask for a kind of fact ("cost", "how long") count through the fact.
    asking = " ".join(m.group(0) for asks, _ in _FACT_KINDS for m in asks.finditer(question))
    full = _terms(question)
    terms = full - _terms(asking)
    own = [_terms(u.text) & terms if u.sayable else frozenset() for u in units]
    df = Counter(t for shared in own for t in shared)
    weight = {t: 1 / math.sqrt(n) for t, n in df.items()}
    block: dict[int, set[str]] = {}
    for u, shared in zip(units, own, strict=True):
        block.setdefault(u.block, set()).update(shared)
    procedural = bool(_PROCEDURAL.search(question)) and not _HOW_MUCH.search(question)
    scores, relevant = [], []
    for u, shared in zip(units, own, strict=True):
        heading = _terms(u.section)
        # A heading the question says in full ("Processing", "What it costs") names what its
        # section answers.
        named = bool(heading) and heading <= full
        lead_in = set().union(*(_terms(units[n].text) for n in u.needs))
        context = ((lead_in & terms) | (heading & full)) - shared
        rest = block[u.block] - shared - context
        lexical = sum(weight.get(t, 1.0) for t in shared)
        lexical += (1.0 if named else 0.5) * sum(weight.get(t, 1.0) for t in context)
        lexical += 0.25 * sum(weight.get(t, 1.0) for t in rest)
        facts = sum(FACT_BONUS for fact in kinds if fact.search(u.text))
        bonus = RANK_BONUS[u.rank] if u.rank < len(RANK_BONUS) else 0.0
        if u.kind == "step":  # steps answer "how do I"; a fact asked for is rarely a step
            bonus += STEP_NUDGE if procedural else -STEP_NUDGE
        lead = u.kind == "sentence" and u.text.endswith(":")
        ok = u.sayable and u.kind not in ("heading", "header") and not lead and \
            bool(shared or (facts and context) or named)
        relevant.append(ok)
        scores.append(lexical + facts + bonus if ok else 0.0)
    return _Scored(scores, relevant, procedural and bool(_HOW_DO_I.search(question)))


def _with_needs(units: list[Unit], positions: list[int]) -> list[int]:
    out = {p for pos in positions for p in (*units[pos].needs, pos)}
    return sorted(out)


def _list_items(units: list[Unit], anchor: Unit) -> list[int]:
    """Every item of the anchor's list (a procedure's steps, capped), nested items included."""
    items = [u.pos for u in units if u.block == anchor.block and u.kind in _ITEMS]
    if anchor.kind == "step":
        top = [p for p in items if units[p].depth == 0][:MAX_STEPS]
        items = [p for p in items if p in top or
                 (units[p].depth > 0 and any(n in top for n in units[p].needs))]
    return items


def _piece(units: list[Unit], scored: _Scored, u: Unit, budget: int, first: bool) -> list[int]:
    """A unit with what it needs: the leading sentence with its whole paragraph when that is
    short; a list item with its whole list when that fits in ``budget`` words and the list is
    short or mostly relevant (a procedure always, when it leads)."""
    # An item comes with the items nested under it ("Take photos:" and what to photograph).
    nested = [v.pos for v in units if u.pos in v.needs and v.kind in _ITEMS]
    alone = _with_needs(units, [u.pos, *nested] if u.kind in _ITEMS else [u.pos])
    if u.kind == "sentence":
        paragraph = [v.pos for v in units if v.block == u.block and v.sayable]
        short = sum(units[p].words for p in paragraph) <= PARAGRAPH_WORDS
        return _with_needs(units, paragraph) if first and short else alone
    if u.kind not in _ITEMS:
        return alone
    items = _list_items(units, u)
    whole = _with_needs(units, items)
    if u.kind == "step":  # a step is never said alone: its whole procedure, as the lead
        return whole if first else []
    fits = sum(units[p].words for p in whole) <= budget
    mostly = 2 * sum(scored.relevant[p] for p in items) >= len(items)
    if (len(items) <= 3 or mostly) and fits:
        return whole
    return alone


def choose(units: list[Unit], scored: _Scored, limit: int, max_pieces: int) -> list[list[int]]:
    """What to say, as pieces in the order they matter: the best unit with what it needs (see
    ``_piece``), then the next best units of the same section (or clearly better ones from
    another section), within ``limit`` words. A procedure is only said whole and as the lead;
    it leads a "how do I" answer whenever one of its steps is half as good as the best unit."""
    ranked = sorted((u for u in units if scored.relevant[u.pos]),
                    key=lambda u: (-scored.score[u.pos], u.pos))
    if not ranked:  # nothing shares a word: the start of the passage ranked first
        sayable = sorted((u for u in units if u.sayable and u.kind in ("sentence", *_ITEMS)
                          and not u.text.endswith(":")), key=lambda u: (u.rank, u.pos))
        return [_piece(units, scored, sayable[0], limit, first=True)] if sayable else []
    anchor = ranked[0]
    best = scored.score[anchor.pos]
    steps = [u for u in ranked if u.kind == "step"]
    if scored.procedural and steps and scored.score[steps[0].pos] >= 0.5 * best:
        # the procedure whose steps answer best together ("Track an order from your account",
        # not the two-step guest one)
        total: dict[int, float] = {}
        for u in steps:
            total[u.block] = total.get(u.block, 0.0) + scored.score[u.pos]
        anchor = next(u for u in steps if u.block == max(total, key=total.__getitem__))
    pieces = [_piece(units, scored, anchor, limit, first=True)]
    said = set(pieces[0])
    words = sum(units[p].words for p in said)
    for u in ranked[1:]:
        if len(pieces) >= max_pieces or scored.score[u.pos] < 0.5 * best:
            break
        if u.pos in said or (u.section != anchor.section and scored.score[u.pos] < 0.8 * best):
            continue
        new = [p for p in _piece(units, scored, u, limit - words, first=False) if p not in said]
        n = sum(units[p].words for p in new)
        if not new or words + n > limit:
            continue
        pieces.append(new)
        said.update(new)
        words += n
    return pieces


def concise_cut(units: list[Unit], scored: _Scored, pieces: list[list[int]], limit: int,
                max_pieces: int) -> list[Unit]:
    """The concise answer: the standard answer's first pieces within ``limit`` words, each
    step cut to its first sentence, a long list cut to its lead-in and its best items."""
    out: list[Unit] = []
    for piece in pieces[:max_pieces]:
        cut = [units[p].first_sentence() if units[p].kind == "step" else units[p]
               for p in piece]
        budget = limit - sum(u.words for u in out)
        if sum(u.words for u in cut) > budget and any(u.kind in ("bullet", "row") for u in cut):
            cut = _best_items(cut, scored, budget)
        if out and sum(u.words for u in cut) > budget:
            break
        out += cut
    return out


def _best_items(cut: list[Unit], scored: _Scored, limit: int) -> list[Unit]:
    """A list piece cut to its lead-in and the items that answer best, within ``limit``."""
    items = [u for u in cut if u.kind in ("bullet", "row") and not u.depth]
    keep = {u.pos for u in cut} - {u.pos for u in items}
    words = sum(u.words for u in cut if u.pos in keep)
    for u in sorted(items, key=lambda u: -scored.score[u.pos]):
        first_item = not keep & {i.pos for i in items}  # a list keeps one item at least
        if first_item or words + u.words <= limit:
            keep.add(u.pos)
            words += u.words
    return [u for u in cut if u.pos in keep or (u.depth and set(u.needs) & keep)]


def compose(question: str, passages: list[Passage]) -> tuple[list[Unit], list[Unit]]:
    """What to say for ``question`` from one article's ``passages`` (best first): the
    standard answer's units and the concise answer's (a part of them), in article order."""
    units = split_units(article_lines(passages))
    scored = score_units(question, units)
    pieces = choose(units, scored, WORD_LIMITS["standard"], MAX_PIECES["standard"])
    standard = [units[p] for piece in pieces for p in piece]
    concise = concise_cut(units, scored, pieces, WORD_LIMITS["concise_empathetic"],
                          MAX_PIECES["concise_empathetic"])
    return _in_order(standard), _in_order(concise)


def _in_order(units: list[Unit]) -> list[Unit]:
    return sorted({u.pos: u for u in units}.values(), key=lambda u: u.pos)


def render(units: list[Unit]) -> str:
    """The chosen units as text: a heading only as a list's lead-in ("Who can apply:"), steps
    numbered from 1, bullets and table rows as Markdown, a paragraph's sentences on one line."""
    lines: list[str] = []
    step_no, block, prev = 0, -1, None
    for u in units:
        indent = "   " * u.depth
        if u.kind == "heading":
            lines.append(f"{u.text}:")
        elif u.kind == "step":
            if u.block != block:  # a new list starts its own numbering
                step_no, block = 0, u.block
            # Keep the article's numbering when the steps are contiguous; renumber otherwise.
            step_no = u.number if u.number == step_no + 1 else step_no + 1
            lines.append(f"{indent}{step_no}. {u.text}")
        elif u.kind == "bullet":
            lines.append(f"{indent}- {u.text}")
        elif u.kind in ("header", "row"):
            lines.append("| " + " | ".join(u.cells) + " |")
            if u.kind == "header":
                lines.append("|" + "---|" * len(u.cells))
        elif prev is not None and prev.kind == "sentence" and prev.block == u.block:
            lines[-1] = f"{lines[-1]} {u.text}"
        else:
            lines.append(u.text)
        prev = u
    return "\n".join(lines)


def _opener(style: str, question: str) -> str:
    if style != "concise_empathetic":
        return ""
    if _NEGATIVE.search(question):
        return "I'm sorry about the hassle — let's get this sorted."
    return "Happy to help."


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
        standard, concise = compose(request.question, [p for p in articles if p.id == top.id])
        link = f"{top.title}: {top.url}" if top.url else top.title
        if request.style == "concise_empathetic":
            body = render(concise) or plain(top.text)
            # The opener on its own line, so a numbered list below stays a list; the link
            # only when the standard answer says more than this one.
            said_all = [u.text for u in concise] == [u.text for u in standard]
            more = "" if said_all and concise else f"\n\nMore in {link}"
            text = f"{_opener(request.style, request.question)}\n{body}{more}".strip()
        else:
            text = f"{render(standard) or plain(top.text)}\n\nFull article — {link}"
        return ModelAnswer(text=text, cited_ids=[top.id], provider=self.name,
                           model=self.model_id, confidence=top.confidence)
