"""Whether the assistant resolved a case, and whether it handled it correctly.

A case is **RESOLVED** by the assistant when all four hold:

(a) it needs no human: the gold label ``needs_human`` is false;
(b) the assistant answered it itself: the final ``decision`` is ``answer`` and no turn escalated
    (``escalated`` is false);
(c) the answer is grounded in a gold article: ``cited_article_ids ∩ gold_article_ids ≠ ∅`` (so a
    case without gold articles can never be resolved; it can still be correctly handled);
(d) the answer is correct: ``judge_correct`` is True when a judge ran (the cell is not
    None/NaN); otherwise the offline judge's ``similarity`` to the reference answer is
    ≥ ``SIMILARITY_THRESHOLD`` (0.5: on the sample eval set, answers citing a gold
    article scored 0.66 on average against the reference, answers citing a wrong one 0.51).
    A row that passes (a)-(c) with neither verdict is an
    input error (``ValueError``): silently counting it as unresolved would bias the rate.

A case is **CORRECTLY HANDLED** when any branch holds:

1. *resolved* (above);
2. *correct escalation*: it needs a human (gold) and some turn escalated;
3. *fitting non-answer*: its ``kind`` is ``out_of_scope`` or ``ambiguous`` and the assistant
   clarified (any turn), escalated (any turn), or answered without citing any article (a
   polite decline or pointer elsewhere rather than an invented, "grounded" answer).

Per-variant table (``resolution_table``): ``n`` cases; ``resolved`` count and
``resolution_rate`` = resolved / n; ``correct_escalations`` = cases that need a human and were
escalated; ``correctly_handled_rate`` = correctly handled / n; ``mean_turns_to_resolution`` =
mean ``turns_to_resolution`` over resolved cases that report it (NaN when none do).
"""

from __future__ import annotations

import pandas as pd

from eval.metrics import (
    Row,
    field,
    id_list,
    is_missing,
    mean_or_nan,
    rate,
    require_columns,
    truthy,
    variants_of,
)

SIMILARITY_THRESHOLD = 0.5  # embedding cosine of answer vs reference; see the module doc
NON_ANSWER_KINDS = frozenset({"out_of_scope", "ambiguous"})

RESOLVED_FIELDS: tuple[str, ...] = (
    "needs_human", "decision", "escalated", "cited_article_ids", "gold_article_ids",
    "judge_correct", "similarity",
)
HANDLED_FIELDS: tuple[str, ...] = (*RESOLVED_FIELDS, "kind", "clarified")
TABLE_COLUMNS: tuple[str, ...] = ("variant", *HANDLED_FIELDS, "turns_to_resolution")


def judged_correct(row: Row, threshold: float = SIMILARITY_THRESHOLD) -> bool:
    """Condition (d): the judge's verdict when one ran, else ``similarity >= threshold``."""
    verdict = field(row, "judge_correct", "resolved")
    if not is_missing(verdict):
        return bool(verdict)
    similarity = field(row, "similarity", "resolved")
    if is_missing(similarity):
        raise ValueError(
            f"row {row.get('case_id', '?')!r} (variant {row.get('variant', '?')!r}) has neither "
            "'judge_correct' nor 'similarity'; run the offline judge so every row has a "
            "similarity, or a judge that sets judge_correct")
    return float(similarity) >= threshold


def resolved(row: Row, threshold: float = SIMILARITY_THRESHOLD) -> bool:
    """Whether the assistant resolved this case: conditions (a)-(d) of the module doc."""
    if truthy(field(row, "needs_human", "resolved")):
        return False
    if field(row, "decision", "resolved") != "answer" or truthy(
            field(row, "escalated", "resolved")):
        return False
    cited = set(id_list(field(row, "cited_article_ids", "resolved"), "cited_article_ids"))
    gold = set(id_list(field(row, "gold_article_ids", "resolved"), "gold_article_ids"))
    if not cited & gold:
        return False
    return judged_correct(row, threshold)


def correct_escalation(row: Row) -> bool:
    """Branch 2: the case needs a human (gold) and some turn escalated."""
    return truthy(field(row, "needs_human", "correctly_handled")) and truthy(
        field(row, "escalated", "correctly_handled"))


def fitting_non_answer(row: Row) -> bool:
    """Branch 3: out-of-scope/ambiguous case met by clarifying, escalating or an uncited answer."""
    if field(row, "kind", "correctly_handled") not in NON_ANSWER_KINDS:
        return False
    if truthy(field(row, "clarified", "correctly_handled")) or truthy(
            field(row, "escalated", "correctly_handled")):
        return True
    uncited = not id_list(field(row, "cited_article_ids", "correctly_handled"))
    return field(row, "decision", "correctly_handled") == "answer" and uncited


def correctly_handled(row: Row, threshold: float = SIMILARITY_THRESHOLD) -> bool:
    """Handled correctly: resolved, correct escalation or fitting non-answer (module doc)."""
    return resolved(row, threshold) or correct_escalation(row) or fitting_non_answer(row)


def with_outcomes(df: pd.DataFrame, threshold: float = SIMILARITY_THRESHOLD) -> pd.DataFrame:
    """A copy of ``df`` with 0/1-ready bool columns ``resolved``, ``correct_escalation`` and
    ``correctly_handled`` (feed them to ``eval.stats.compare_variants``)."""
    require_columns(df, HANDLED_FIELDS, "with_outcomes")
    out = df.copy()
    out["resolved"] = [resolved(r, threshold) for _, r in df.iterrows()]
    out["correct_escalation"] = [correct_escalation(r) for _, r in df.iterrows()]
    out["correctly_handled"] = [
        res or esc or fitting_non_answer(r)
        for res, esc, (_, r) in zip(out["resolved"], out["correct_escalation"], df.iterrows(),
                                    strict=True)]
    return out


def resolution_table(df: pd.DataFrame, threshold: float = SIMILARITY_THRESHOLD) -> pd.DataFrame:
    """Resolution figures per variant (definitions in the module doc).

    Args:
        df: the runner's rows; needs the columns in ``TABLE_COLUMNS``.
        threshold: similarity at or above which an unjudged answer counts as correct.

    Returns:
        One row per variant: ``variant``, ``n``, ``resolved``, ``resolution_rate``,
        ``correct_escalations``, ``correctly_handled_rate``, ``mean_turns_to_resolution``.

    Example:
        >>> rows = pd.DataFrame([{"variant": "a", "kind": "single", "needs_human": False,
        ...     "decision": "answer", "escalated": False, "clarified": False,
        ...     "cited_article_ids": ["g"], "gold_article_ids": ["g"], "judge_correct": None,
        ...     "similarity": 0.5, "turns_to_resolution": 1}])
        >>> resolution_table(rows)["resolution_rate"].tolist()
        [1.0]
    """
    require_columns(df, TABLE_COLUMNS, "resolution_table")
    scored = with_outcomes(df, threshold)
    out = []
    for variant in variants_of(df):
        mine = scored[scored["variant"] == variant]
        n = len(mine)
        done = mine[mine["resolved"]]
        out.append({
            "variant": variant,
            "n": n,
            "resolved": int(mine["resolved"].sum()),
            "resolution_rate": rate(int(mine["resolved"].sum()), n),
            "correct_escalations": int(mine["correct_escalation"].sum()),
            "correctly_handled_rate": rate(int(mine["correctly_handled"].sum()), n),
            "mean_turns_to_resolution": mean_or_nan(done["turns_to_resolution"]),
        })
    return pd.DataFrame(out, columns=[
        "variant", "n", "resolved", "resolution_rate", "correct_escalations",
        "correctly_handled_rate", "mean_turns_to_resolution"])
