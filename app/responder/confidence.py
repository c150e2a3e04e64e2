"""Calibrated answer confidence: P(the top retrieved article answers the question).

A logistic model over retrieval signals, fitted by ``supportbot eval calibrate`` on the labelled
retrieval questions plus the out-of-scope and ambiguous cases in ``knowledge/eval/`` (label 1
when the top article is a gold article, 0 otherwise, including every out-of-scope question).
The fitted weights are pasted below with the fit's figures; refit when the model or KB changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class _Hit(Protocol):
    dense_score: float | None
    lexical_score: float | None
    dense_rank: int | None
    lexical_rank: int | None


FEATURES = ("dense_top", "dense_margin", "dense_first", "lexical_first", "lexical_log")


def features(results: Sequence[_Hit]) -> list[float]:
    """Signals of how sure retrieval is about its first result (zeros when empty)."""
    if not results:
        return [0.0] * len(FEATURES)
    top = results[0]
    dense_top = top.dense_score or 0.0
    others = [r.dense_score or 0.0 for r in results[1:]]
    margin = dense_top - max(others) if others else dense_top
    return [
        dense_top,
        margin,
        1.0 if top.dense_rank == 1 else 0.0,
        1.0 if top.lexical_rank == 1 else 0.0,
        math.log1p(max(0.0, top.lexical_score or 0.0)),
    ]


@dataclass(frozen=True)
class Calibration:
    """Logistic weights (one per feature, in ``FEATURES`` order) and an intercept."""

    weights: tuple[float, ...]
    bias: float

    def probability(self, feats: Sequence[float]) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, feats, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


# Fitted by `supportbot eval calibrate` on 232 labelled questions (149 with a correct top
# article): held-out Brier 0.182, expected calibration error 0.094, accuracy@0.5 0.73.
DEFAULT = Calibration(weights=(3.703, 11.477, 0.259, 0.379, 1.219), bias=-3.945)


def confidence(results: Sequence[_Hit], calibration: Calibration = DEFAULT) -> float:
    """Calibrated probability that ``results[0]`` answers the question."""
    if not results:
        return 0.0
    return calibration.probability(features(results))
