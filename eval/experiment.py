"""One A/B evaluation, end to end: build the real components (``app.container``) over a
temporary store, run every case through the turn policy, score, report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config import Settings
from app.container import build, knowledge, scratch_store
from app.errors import ValidationError
from app.responder.variants import load_variants
from eval.datasets import load_cases
from eval.metrics.resolution import SIMILARITY_THRESHOLD
from eval.report import Report, build_report
from eval.runner import run_eval

log = logging.getLogger("supportbot.eval")


@dataclass
class ExperimentResult:
    """Where the report went and its headline verdicts."""

    markdown: Path
    html: Path
    headline: list[str]
    report: Report


def live_comparisons(settings: Settings, variants: list[str]) -> dict[str, Any] | None:
    """The store's live A/B figures for the first two variants, when it has data for both."""
    from datetime import UTC, datetime, timedelta

    from app.container import open_store
    from eval.stats import live_comparison

    store = open_store(settings)
    try:
        outcomes = store.analytics.outcomes(datetime(1970, 1, 1, tzinfo=UTC),
                                            datetime.now(UTC) + timedelta(seconds=1))
    finally:
        store.close()
    seen = {o.variant for o in outcomes}
    if len(variants) < 2 or not {variants[0], variants[1]} <= seen:
        return None
    return live_comparison(outcomes, variants[0], variants[1])


def run_experiment(settings: Settings, variants: list[str], dataset: Path, out: Path, *,
                   limit: int | None = None, resume: bool = True, ragas: bool = True,
                   live: bool = True, progress: bool | None = None) -> ExperimentResult:
    """Run ``dataset`` through each variant with the configured answer model and report."""
    if not variants:
        raise ValidationError("name at least one variant (--variants control,candidate)")
    config = load_variants(settings.variants_file)
    chosen = [config.get(v) for v in variants]
    cases = load_cases(dataset)[:limit]
    kb = knowledge(settings).kb
    if not kb.manifest.counts().get("articles"):
        raise ValidationError(f"the knowledge base in {settings.data_dir} is empty: run "
                              "'supportbot ingest knowledge/' first")
    judge = None
    ragas_judge = None
    if settings.anthropic_api_key:
        from eval.judge import ClaudeJudge
        from eval.metrics.ragas_bridge import judge_from_settings

        judge = ClaudeJudge.from_settings(settings)
        ragas_judge = judge_from_settings(settings, embedder=kb.embedder) if ragas else None
    # The conversations of the run go to a throwaway store: the live one is never touched.
    with scratch_store(settings) as store, build(settings, kb=kb, store=store,
                                                  variants=config) as engine:
        rows = run_eval(engine.conversations, cases, chosen, out,
                        embed=kb.embedder.embed_documents, judge=judge, resume=resume,
                        progress=progress)
        responder = engine.responder
    meta = {"dataset": str(dataset), "answer model": responder.model.name,
            "judge": "Claude" if judge else "offline (embedding similarity)"}
    report = build_report(rows, out, variants, threshold=SIMILARITY_THRESHOLD, ragas=ragas,
                          judge=ragas_judge, meta=meta,
                          live=live_comparisons(settings, variants) if live else None)
    headline = [c.verdict for c in report.comparisons
                if c.metric in ("resolved", "correctly_handled", "escalated", "csat_proxy")]
    return ExperimentResult(report.markdown, report.html, headline, report)
