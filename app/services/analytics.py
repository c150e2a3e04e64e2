"""Support analytics: the store's outcomes summarised overall and per variant."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from app.store import Store, summarize, summarize_by_variant

DEFINITIONS = {
    "ai_resolution_rate": "conversations in which the customer wrote, never escalated and not "
    "marked unresolved by the customer (feedback resolved=false), over conversations in which "
    "the customer wrote; the hard and soft rates are the stricter views",
    "ai_resolution_rate_hard": "conversations the customer confirmed resolved (feedback "
    "resolved=true) and that were never escalated, over all conversations in the range",
    "ai_resolution_rate_soft": "conversations never escalated whose customer did not start "
    "another conversation within the window, over conversations whose window has elapsed "
    "(as Intercom counts Fin's resolutions)",
    "escalation_rate": "conversations handed to a person (escalated status, an escalating "
    "reply, or a linked ticket) over all conversations",
    "csat_average": "mean of each conversation's latest CSAT score (1-5)",
    "first_response": "seconds from the first customer message to the first assistant reply",
}


def _clean(value: Any) -> Any:
    """NaN (no data) becomes null in JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def analytics(store: Store, start: datetime | None = None, end: datetime | None = None,
              window_hours: float = 24.0, workspace: str | None = None) -> dict[str, Any]:
    """The analytics report for conversations created in ``[start, end)`` (default: all)."""
    start = start or datetime(1970, 1, 1, tzinfo=UTC)
    end = end or datetime.now(UTC) + timedelta(seconds=1)
    window = timedelta(hours=window_hours)
    outcomes = store.analytics.outcomes(start, end, window=window, workspace=workspace)
    reasons = store.analytics.escalations_by_reason(start, end, workspace=workspace)
    overall = summarize(outcomes)
    per_variant = summarize_by_variant(outcomes)
    channels = Counter(o.channel for o in outcomes)
    variant_channels: dict[str, Counter[str]] = {}
    for o in outcomes:
        variant_channels.setdefault(o.variant or "none", Counter())[o.channel] += 1

    def block(s: Any) -> dict[str, Any]:
        d = asdict(s)
        return _clean({
            "total_conversations": d["conversations"],
            "ai_resolution_rate": d["ai_resolution_rate"],
            "engaged_conversations": d["engaged"],
            "ai_resolution_rate_hard": d["hard_resolution_rate"],
            "ai_resolution_rate_soft": d["soft_resolution_rate"],
            "escalation_rate": d["escalation_rate"], "escalated": d["escalated"],
            "csat_average": d["csat_average"], "csat_responses": d["csat_responses"],
            "first_response_p50_s": d["first_response_p50_s"],
            "first_response_p95_s": d["first_response_p95_s"],
            "soft_eligible": d["soft_eligible"],
        })

    report = block(overall)
    report.update({
        "range": {"start": start.isoformat(), "end": end.isoformat(),
                  "window_hours": window_hours},
        "channel_distribution": dict(channels),
        "escalation_reasons": dict(_reason_totals(reasons, None)),
        "variants": {(v or "none"): {**block(s), "channel_distribution":
                                     dict(variant_channels.get(v or "none", {}))}
                     for v, s in per_variant.items()},
        "definitions": DEFINITIONS,
    })
    for name, block_ in report["variants"].items():
        block_["escalation_reasons"] = dict(_reason_totals(reasons, name))
    return report


def _reason_totals(reasons: list[Any], variant: str | None) -> Counter[str]:
    totals: Counter[str] = Counter()
    for r in reasons:
        if variant is None or (r.variant or "none") == variant:
            totals[r.reason] += r.conversations
    return totals
