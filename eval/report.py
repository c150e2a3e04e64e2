"""The A/B evaluation report: metric tables, comparisons with CIs and verdicts, plots.

``build_report`` takes the runner's rows and writes ``report.md``, a self-contained
``report.html`` (plots embedded as PNG data URIs) and the raw tables (CSV) to ``out_dir``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from eval.metrics.csat import with_csat_proxy
from eval.metrics.escalation import confusion_matrix, escalation_table
from eval.metrics.resolution import resolution_table, with_outcomes
from eval.metrics.retrieval import recall_at_k, retrieval_table
from eval.stats import Comparison, bootstrap_ci, compare_variants, segment_breakdown

# Metrics compared between variants: (column, label, higher is better).
COMPARED = (
    ("resolved", "resolution rate", True),
    ("correctly_handled", "correctly handled", True),
    ("escalated", "escalation rate", False),
    ("csat_proxy", "CSAT proxy (1-5)", True),
    ("similarity", "answer similarity to reference", True),
    ("rouge_l", "ROUGE-L vs reference", True),
    ("latency_ms", "latency (ms)", False),
)

DEFINITIONS = """\
- **Resolved**: the case needs no human (gold label), the assistant answered without escalating,
  the answer cites a gold article, and it is judged correct (Claude as judge when
  `ANTHROPIC_API_KEY` is set; otherwise the answer's embedding cosine similarity to the
  reference answer is at least the threshold below). Resolution rate = resolved / cases.
- **Correctly handled**: resolved; or needs a human and was escalated (correct escalation); or
  out-of-scope/ambiguous and the assistant clarified, escalated or answered without citing.
- **Escalation precision / recall / F1** of "escalated" against the gold "needs a human";
  false-escalation rate = escalated among cases that need no human.
- **Retrieval**: recall@k = a gold article among the first k retrieved; MRR = mean 1/rank of
  the first gold article; nDCG@k with binary relevance (cases with gold articles only).
- **CSAT proxy** (1-5): a linear score of resolution, turns, escalation, sentiment trajectory
  and latency, with weights fitted on the CSAT recorded in past resolved conversations.
- **ragas** (offline, non-LLM): context precision/recall against the gold article passages,
  string similarity and ROUGE-L of the answer against the reference answer; with a Claude key,
  faithfulness and response relevancy with Claude as judge.
- **Comparisons**: 95 % percentile-bootstrap CIs (2,000 resamples, fixed seed); the difference
  is candidate − control (points for rates); p from a pooled two-proportion z-test for 0/1
  metrics and a permutation test (10,000 permutations) otherwise. A difference is called only
  when its CI excludes 0 and p < 0.05.
"""


@dataclass
class Report:
    """What ``build_report`` produced."""

    markdown: Path
    html: Path
    comparisons: list[Comparison]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


LIST_COLUMNS = ("gold_article_ids", "cited_article_ids", "retrieved_ids", "contexts",
                "reference_contexts", "sentiment_scores")


def normalise_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """List columns as Python lists (Parquet gives NumPy arrays)."""
    out = rows.copy()
    for column in LIST_COLUMNS:
        if column in out.columns:
            out[column] = [list(v) if v is not None and not isinstance(v, float) else []
                           for v in out[column]]
    return out


def score_rows(rows: pd.DataFrame, threshold: float, ragas: bool = True,
               judge: Any = None) -> pd.DataFrame:
    """The rows with outcome columns, the CSAT proxy and (optionally) ragas scores."""
    scored = with_csat_proxy(with_outcomes(normalise_rows(rows), threshold))
    for column in ("resolved", "correctly_handled", "escalated", "correct_escalation"):
        scored[column] = scored[column].astype(float)
    if ragas:
        from eval.metrics.ragas_bridge import ragas_scores

        has_ref = scored["reference_answer"].fillna("").str.len() > 0
        inputs = [{"question": r.question, "answer": r.answer, "contexts": list(r.contexts),
                   "reference": r.reference_answer,
                   **({"reference_contexts": list(r.reference_contexts)}
                      if "reference_contexts" in scored.columns else {})}
                  for r in scored[has_ref].itertuples()]
        scores = pd.DataFrame(ragas_scores(inputs, llm_judge=judge),
                              index=scored.index[has_ref]) if inputs else pd.DataFrame()
        for column in scores.columns:
            scored[column] = scores[column]
    return scored


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plot_bars(scored: pd.DataFrame, variants: Sequence[str]) -> str:
    """Per-variant means with 95 % bootstrap CIs for the headline metrics."""
    metrics = [("resolved", "resolution rate"), ("correctly_handled", "correctly handled"),
               ("escalated", "escalation rate"), ("csat_proxy", "CSAT proxy")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4))
    for ax, (column, label) in zip(axes, metrics, strict=True):
        means: list[float] = []
        errs: list[list[float]] = [[], []]
        for v in variants:
            values = scored.loc[scored["variant"] == v, column].dropna().to_numpy(float)
            mean = float(values.mean()) if len(values) else math.nan
            lo, hi = bootstrap_ci(values) if len(values) else (math.nan, math.nan)
            means.append(mean)
            errs[0].append(mean - lo)
            errs[1].append(hi - mean)
        ax.bar(list(variants), means, yerr=errs, capsize=6,
               color=["#4C72B0", "#DD8452", "#55A868", "#C44E52"][: len(variants)])
        ax.set_title(label)
        ax.tick_params(axis="x", labelrotation=15)
    fig.suptitle("Per-variant metrics with 95% bootstrap CIs", y=1.04)
    fig.tight_layout()
    return _png(fig)


def plot_retrieval(scored: pd.DataFrame, variants: Sequence[str], max_k: int = 10) -> str:
    """Recall@k for k = 1..max_k, one line per variant."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    with_gold = scored[scored["gold_article_ids"].map(len) > 0]
    for v in variants:
        rows = with_gold[with_gold["variant"] == v]
        curve = [np.mean([recall_at_k(list(r.retrieved_ids), r.gold_article_ids, k)
                          for r in rows.itertuples()]) for k in range(1, max_k + 1)]
        ax.plot(range(1, max_k + 1), curve, marker="o", label=v)
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Retrieval: a gold article in the top k")
    return _png(fig)


def plot_confusion(scored: pd.DataFrame, variants: Sequence[str]) -> str:
    """Escalated vs needs-a-human, one 2×2 matrix per variant."""
    fig, axes = plt.subplots(1, len(variants), figsize=(4.4 * len(variants), 3.2))
    for ax, v in zip(np.atleast_1d(axes), variants, strict=True):
        cm = confusion_matrix(scored[scored["variant"] == v])
        values = cm.to_numpy(float)
        ax.imshow(values, cmap="Blues")
        ax.set_xticks(range(values.shape[1]), [str(c) for c in cm.columns], fontsize=8)
        ax.set_yticks(range(values.shape[0]), [str(i) for i in cm.index], fontsize=8)
        for (i, j), n in np.ndenumerate(values):
            ax.text(j, i, f"{int(n)}", ha="center", va="center", fontsize=12,
                    color="white" if n > values.max() / 2 else "black")
        ax.set_title(v)
    fig.suptitle("Escalation confusion matrix", y=1.04)
    fig.tight_layout()
    return _png(fig)


def build_report(rows: pd.DataFrame, out_dir: Path, variants: Sequence[str], *,
                 threshold: float, ragas: bool = True, judge: Any = None,
                 live: dict[str, Comparison] | None = None,
                 meta: dict[str, Any] | None = None) -> Report:
    """Score the rows, compare every variant with the first (the control), write the report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [v for v in variants if v not in set(rows["variant"])]
    if missing:
        raise ValueError(f"no rows for variant(s) {', '.join(missing)}; run them first")
    scored = score_rows(rows, threshold, ragas, judge)
    control = variants[0]
    tables = {
        "retrieval": retrieval_table(scored),
        "resolution": resolution_table(scored, threshold),
        "escalation": escalation_table(scored),
        "quality": scored.groupby("variant")[[c for c in (
            "csat_proxy", "similarity", "rouge_l", "string_similarity", "context_precision",
            "context_recall", "faithfulness", "answer_relevancy") if c in scored.columns]]
        .mean().reset_index(),
        "latency": scored.groupby("variant")["latency_ms"].describe(percentiles=[.5, .95])
        [["count", "50%", "95%", "max"]].reset_index(),
    }
    comparisons = [compare_variants(scored, column, control, v)
                   for v in variants[1:] for column, _, _ in COMPARED
                   if column in scored.columns]
    segments = {v: segment_breakdown(scored, "resolved", variants=(control, v))
                for v in variants[1:]}
    plots = {"Per-variant metrics": plot_bars(scored, variants),
             "Retrieval curves": plot_retrieval(scored, variants),
             "Escalation confusion matrix": plot_confusion(scored, variants)}
    for name, table in tables.items():
        table.to_csv(out_dir / f"{name}.csv", index=False)
    scored.to_csv(out_dir / "scored_rows.csv", index=False)
    comp_table = pd.DataFrame([{
        "metric": c.metric, "control": c.variant_a, "candidate": c.variant_b,
        "n": f"{c.n_a}/{c.n_b}", "control_value": c.rate_a, "candidate_value": c.rate_b,
        "diff": c.diff, "diff_ci": f"[{c.diff_ci[0]:+.2f}, {c.diff_ci[1]:+.2f}]",
        "p": c.p_value, "verdict": c.verdict} for c in comparisons])
    comp_table.to_csv(out_dir / "comparisons.csv", index=False)
    info = {"generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cases": int(rows["case_id"].nunique()), "variants": ", ".join(variants),
            "similarity threshold": threshold, **(meta or {})}
    md = _markdown(info, comparisons, comp_table, tables, segments, live)
    md_path = out_dir / "report.md"
    md_path.write_text(md, encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(_html(info, comparisons, comp_table, tables, segments, live, plots),
                         encoding="utf-8")
    return Report(md_path, html_path, comparisons, {**tables, "comparisons": comp_table})


def _headline(comparisons: list[Comparison]) -> list[str]:
    return [c.verdict for c in comparisons if c.metric in ("resolved", "correctly_handled",
                                                          "escalated", "csat_proxy")]


def _markdown(info: dict[str, Any], comparisons: list[Comparison], comp_table: pd.DataFrame,
              tables: dict[str, pd.DataFrame], segments: dict[str, pd.DataFrame],
              live: dict[str, Comparison] | None) -> str:
    parts = ["# supportbot A/B evaluation report", ""]
    parts += [f"- **{k}**: {v}" for k, v in info.items()]
    parts += ["", "## Verdict", ""] + [f"- {v}" for v in _headline(comparisons)]
    parts += ["", "## Comparisons", "", _md_table(comp_table)]
    for name, table in tables.items():
        parts += ["", f"## {name.title()}", "", _md_table(table)]
    for v, seg in segments.items():
        parts += ["", f"## Resolution by segment ({v} vs control)", "", _md_table(seg)]
    if live:
        parts += ["", "## Live data (store)", ""] + [f"- {c.verdict}" for c in live.values()]
    parts += ["", "## Definitions", "", DEFINITIONS]
    return "\n".join(parts) + "\n"


def _html(info: dict[str, Any], comparisons: list[Comparison], comp_table: pd.DataFrame,
          tables: dict[str, pd.DataFrame], segments: dict[str, pd.DataFrame],
          live: dict[str, Comparison] | None, plots: dict[str, str]) -> str:
    esc = html.escape
    body = ["<h1>supportbot A/B evaluation report</h1>", "<ul>"]
    body += [f"<li><b>{esc(str(k))}</b>: {esc(str(v))}</li>" for k, v in info.items()]
    body += ["</ul>", "<h2>Verdict</h2>", "<ul>"]
    body += [f"<li>{esc(v)}</li>" for v in _headline(comparisons)] + ["</ul>"]
    for title, png in plots.items():
        body += [f"<h2>{esc(title)}</h2>", f'<img alt="{esc(title)}" '
                 f'src="data:image/png;base64,{png}">']
    body += ["<h2>Comparisons</h2>", comp_table.to_html(index=False, float_format="%.3f")]
    for name, table in tables.items():
        body += [f"<h2>{esc(name.title())}</h2>", table.to_html(index=False,
                                                                float_format="%.3f")]
    for v, seg in segments.items():
        body += [f"<h2>Resolution by segment ({esc(v)} vs control)</h2>",
                 seg.to_html(index=False, float_format="%.3f")]
    if live:
        body += ["<h2>Live data (store)</h2>", "<ul>"]
        body += [f"<li>{esc(c.verdict)}</li>" for c in live.values()] + ["</ul>"]
    definitions = "".join(f"<li>{esc(line[2:])}</li>" for line in
                          DEFINITIONS.replace("\n  ", " ").splitlines() if line.startswith("- "))
    body += ["<h2>Definitions</h2>", f"<ul>{definitions}</ul>"]
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
             "color:#222}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>supportbot A/B report"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>")
