"""A CSAT proxy on 1-5 from a conversation's features, fitted on past rated conversations.

``csat_proxy = clip(bias + Σ weight_f · feature_f, 1, 5)`` over these features:

- ``resolved`` (0/1): past conversations: ``status == "resolved"``; eval rows:
  ``eval.metrics.resolution.resolved``.
- ``turns``: number of customer turns (eval rows: ``n_turns``).
- ``escalated`` (0/1): past conversations: ``pipelines.conversations.is_escalated``
  (``resolution == "agent_resolved"`` or ``tier == 2``); eval rows: ``escalated`` (any turn
  escalated).
- ``last_sentiment``: the last customer turn's ``app.responder.sentiment.score`` in [-1, 1].
- ``sentiment_change``: last minus first customer sentiment (0 with one turn).
- ``latency_s``: mean reply latency in seconds (eval rows: ``latency_ms / 1000``). Past
  conversations record no latency, so it is 0 for all of them.

``fit_weights`` fits the weights by ordinary least squares (numpy) on the conversations that have
a recorded CSAT. A feature that is constant over them cannot be estimated (its column is
collinear with the bias); it is held at ``PRIORS`` and reported in ``FitReport.fixed``. In the
shipped sample two are: every rated conversation is resolved (unresolved ones never got a
rating), and none has a latency. Their priors are judgements, not fits: ``resolved`` +1.0
(an unresolved conversation rates one point lower, other things equal) and ``latency_s`` 0.0
(the proxy ignores latency until conversations with latencies and ratings exist to fit it).

Quality is the Spearman rank correlation between the (clipped) proxy and the recorded CSAT, on a
held-out third (weights fitted on the other two thirds) and on all data (weights refitted on
everything: the ``DEFAULT_WEIGHTS`` below). Refit with ``supportbot eval csat``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.responder.sentiment import score
from eval.metrics import Row, is_missing, mean_or_nan, require_columns, truthy, variants_of
from eval.metrics import field as row_field
from eval.metrics.resolution import resolved as case_resolved
from eval.stats import spearman
from pipelines.conversations import customer_texts, is_escalated

FEATURES: tuple[str, ...] = (
    "resolved", "turns", "escalated", "last_sentiment", "sentiment_change", "latency_s")
PRIORS: dict[str, float] = {"resolved": 1.0, "latency_s": 0.0}

# Fitted by fit_weights(load_conversations([CONVERSATIONS_DIR])) (seed 0) on the 170 rated
# conversations; resolved and latency_s held at PRIORS. Spearman(proxy, CSAT): 0.494 on the
# held-out third (n=57, weights fitted on the other 113; 0.49-0.67 over seeds 0-5) and 0.569 on
# all 170; RMSE 0.89 held out, 0.77 on all (recorded CSAT mean 4.06).
DEFAULT_WEIGHTS: dict[str, float] = {
    "bias": 3.8857,
    "resolved": 1.0,
    "turns": -0.3708,
    "escalated": -0.884,
    "last_sentiment": 0.9317,
    "sentiment_change": -0.0159,
    "latency_s": 0.0,
}


@dataclass(frozen=True)
class CsatFeatures:
    """One conversation's proxy inputs (definitions in the module doc).

    Example:
        >>> f = CsatFeatures(resolved=1, turns=2, escalated=0, last_sentiment=0.5,
        ...                  sentiment_change=0.3)
        >>> 1.0 <= csat_proxy(f) <= 5.0
        True
    """

    resolved: float
    turns: float
    escalated: float
    last_sentiment: float
    sentiment_change: float
    latency_s: float = 0.0

    def vector(self) -> np.ndarray:
        """The features in ``FEATURES`` order."""
        return np.array([float(getattr(self, name)) for name in FEATURES])


@dataclass(frozen=True)
class FitReport:
    """How well the fitted proxy ranks conversations like their recorded CSAT.

    Args:
        n_rated: conversations with a CSAT (the fit's data); n_train / n_holdout: the split.
        spearman_holdout: Spearman(proxy, CSAT) on the held-out part, weights fitted on the rest.
        spearman_all: Spearman on all rated conversations, weights fitted on all of them.
        rmse_holdout / rmse_all: root-mean-square error of the clipped proxy, same splits.
        mean_csat: mean recorded CSAT.
        fixed: features held at their prior instead of fitted, with the reason.
    """

    n_rated: int
    n_train: int
    n_holdout: int
    spearman_holdout: float
    spearman_all: float
    rmse_holdout: float
    rmse_all: float
    mean_csat: float
    fixed: dict[str, str] = field(default_factory=dict)


def _features_vector(features: CsatFeatures | Mapping[str, float]) -> np.ndarray:
    if isinstance(features, CsatFeatures):
        return features.vector()
    missing = [name for name in FEATURES if name not in features]
    if missing:
        raise ValueError(f"csat_proxy needs feature(s) {missing}; build them with "
                         "features_from_eval_row or features_from_conversation")
    return np.array([float(features[name]) for name in FEATURES])


def _weights_vector(weights: Mapping[str, float]) -> np.ndarray:
    missing = [name for name in ("bias", *FEATURES) if name not in weights]
    if missing:
        raise ValueError(f"weights lack {missing}; start from a copy of DEFAULT_WEIGHTS")
    return np.array([float(weights[name]) for name in ("bias", *FEATURES)])


def csat_proxy(
    features: CsatFeatures | Mapping[str, float], weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> float:
    """``bias + Σ weight · feature`` clipped to [1, 5] (features as ``CsatFeatures`` or a dict)."""
    w = _weights_vector(weights)
    raw = float(w[0] + w[1:] @ _features_vector(features))
    return min(5.0, max(1.0, raw))


def sentiment_features(scores: Sequence[float]) -> tuple[float, float]:
    """(last score, last - first) of customer sentiment scores, oldest first; (0, 0) for none."""
    values = [float(s) for s in scores if not is_missing(s)]
    if not values:
        return 0.0, 0.0
    return values[-1], values[-1] - values[0]


def features_from_conversation(record: Mapping[str, Any]) -> CsatFeatures:
    """Features of one past conversation record (``knowledge/conversations/*.jsonl``)."""
    texts = customer_texts(record)
    last, change = sentiment_features([score(t) for t in texts])
    return CsatFeatures(
        resolved=float(record.get("status") == "resolved"), turns=float(len(texts)),
        escalated=float(is_escalated(record)), last_sentiment=last, sentiment_change=change,
        latency_s=0.0,  # past conversations record no latency
    )


def features_from_eval_row(row: Row) -> CsatFeatures:
    """Features of one runner row (needs the resolution fields, ``n_turns``,
    ``sentiment_scores`` and ``latency_ms``)."""
    scores = row_field(row, "sentiment_scores", "csat proxy")
    last, change = sentiment_features([] if is_missing(scores) else list(scores))
    latency = row_field(row, "latency_ms", "csat proxy")
    return CsatFeatures(
        resolved=float(case_resolved(row)),
        turns=float(row_field(row, "n_turns", "csat proxy")),
        escalated=float(truthy(row_field(row, "escalated", "csat proxy"))),
        last_sentiment=last, sentiment_change=change,
        latency_s=0.0 if is_missing(latency) else float(latency) / 1000.0,
    )


def _fit(x: np.ndarray, y: np.ndarray, fixed: Mapping[int, float]) -> np.ndarray:
    """Least squares for [bias, *weights] with the columns in ``fixed`` held at their values."""
    w = np.zeros(x.shape[1] + 1)
    offset = np.zeros(len(y))
    for j, value in fixed.items():
        w[j + 1] = value
        offset += value * x[:, j]
    free = [j for j in range(x.shape[1]) if j not in fixed]
    design = np.hstack([np.ones((len(y), 1)), x[:, free]])
    coef, *_ = np.linalg.lstsq(design, y - offset, rcond=None)
    w[0] = coef[0]
    w[[j + 1 for j in free]] = coef[1:]
    return w


def _predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.clip(w[0] + x @ w[1:], 1.0, 5.0)


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - y) ** 2))) if len(y) else math.nan


def fit_weights(
    conversations: Iterable[Mapping[str, Any]], holdout: float = 1 / 3, seed: int = 0,
    priors: Mapping[str, float] = PRIORS,
) -> tuple[dict[str, float], FitReport]:
    """Least-squares weights for ``csat_proxy`` and how well they rank recorded CSAT.

    Args:
        conversations: past conversation records; those without a ``csat`` are skipped.
        holdout: share held out (seeded shuffle) to measure Spearman on unseen conversations.
        seed: the shuffle's seed.
        priors: values for features that are constant in the data and so cannot be fitted.

    Returns:
        (weights refitted on all rated conversations, ``FitReport``).
    """
    rated = [c for c in conversations if not is_missing(c.get("csat"))]
    if len(rated) < len(FEATURES) + 3:
        raise ValueError(f"need at least {len(FEATURES) + 3} conversations with a csat to fit, "
                         f"got {len(rated)}")
    x = np.array([features_from_conversation(c).vector() for c in rated])
    y = np.array([float(c["csat"]) for c in rated])
    fixed: dict[int, float] = {}
    reasons: dict[str, str] = {}
    for j, name in enumerate(FEATURES):
        if np.ptp(x[:, j]) == 0:
            fixed[j] = float(priors.get(name, 0.0))
            reasons[name] = (f"constant ({x[0, j]:g}) in every rated conversation; held at "
                             f"prior {fixed[j]:g}")
    order = np.random.default_rng(seed).permutation(len(y))
    n_hold = round(len(y) * holdout)
    test, train = order[:n_hold], order[n_hold:]
    w_train = _fit(x[train], y[train], fixed)
    w_all = _fit(x, y, fixed)
    report = FitReport(
        n_rated=len(y), n_train=len(train), n_holdout=len(test),
        spearman_holdout=spearman(_predict(x[test], w_train), y[test]) if n_hold else math.nan,
        spearman_all=spearman(_predict(x, w_all), y),
        rmse_holdout=_rmse(_predict(x[test], w_train), y[test]),
        rmse_all=_rmse(_predict(x, w_all), y),
        mean_csat=float(y.mean()), fixed=reasons,
    )
    weights = {name: round(float(v), 4) for name, v in zip(("bias", *FEATURES), w_all,
                                                           strict=True)}
    return weights, report


def with_csat_proxy(
    df: pd.DataFrame, weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> pd.DataFrame:
    """A copy of the runner's rows with a ``csat_proxy`` column."""
    require_columns(df, ("n_turns", "escalated", "sentiment_scores", "latency_ms"),
                    "with_csat_proxy")
    out = df.copy()
    out["csat_proxy"] = [csat_proxy(features_from_eval_row(r), weights) for _, r in df.iterrows()]
    return out


def csat_table(df: pd.DataFrame, weights: Mapping[str, float] = DEFAULT_WEIGHTS) -> pd.DataFrame:
    """Per variant: ``n`` and ``csat_proxy`` (mean proxy over the variant's cases)."""
    require_columns(df, ("variant",), "csat_table")
    scored = with_csat_proxy(df, weights)
    return pd.DataFrame(
        [{"variant": v, "n": int((scored["variant"] == v).sum()),
          "csat_proxy": mean_or_nan(scored.loc[scored["variant"] == v, "csat_proxy"])}
         for v in variants_of(df)],
        columns=["variant", "n", "csat_proxy"])

