"""Fit the responder's confidence calibration on the labelled sets in ``knowledge/eval/``.

``supportbot eval calibrate [--data-dir DIR]`` (ingests the sample articles if the index has
none) prints the weights to paste into ``app/responder/confidence.py`` and the fit's quality:
Brier score, expected calibration error, and accuracy at the 0.5 threshold, on a held-out
third of the data (the weights printed are then refitted on everything).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.container import knowledge
from app.knowledge.retriever import Retriever
from app.responder.confidence import FEATURES, Calibration, features
from eval.metrics.retrieval import load_questions

ROOT = Path(__file__).resolve().parents[1]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Newton-Raphson logistic regression with a small L2 penalty; returns [bias, *weights]."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        w -= np.linalg.solve(hess, grad)
    return w


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (p >= lo) & (p < hi if hi < 1 else p <= hi)
        if mask.any():
            total += mask.sum() / len(p) * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def dataset(retriever: Retriever, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Retrieval features of each labelled question and whether the top article is gold: the
    retrieval questions, plus the out-of-scope and ambiguous cases (whose top is never gold)."""
    rows: list[tuple[str, set[str]]] = [
        (r["question"], set(r["gold_article_ids"]))
        for r in load_questions(root / "knowledge/eval/retrieval_questions.jsonl")]
    for line in (root / "knowledge/eval/cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        if case["kind"] in ("out_of_scope", "ambiguous"):
            rows.append((case["turns"][0], set(case["gold_article_ids"])))
    x, y = [], []
    for question, gold in rows:
        results = retriever.search(question, 4)
        x.append(features(results))
        y.append(1.0 if results and results[0].article_id in gold else 0.0)
    return np.array(x), np.array(y)


def calibrate(settings: Settings, root: Path = ROOT) -> dict[str, Any]:
    """Fit on the index in ``settings.data_dir`` (the sample articles are ingested first when it
    has no articles) and report the fit's quality and the calibration to paste."""
    parts = knowledge(settings)
    if not parts.kb.manifest.counts().get("articles"):
        from pipelines.ingest import Ingester

        Ingester(parts.kb, progress=False).run([root / "knowledge/articles"], "articles")
    x, y = dataset(parts.retriever, root)
    rng = np.random.default_rng(7)
    order = rng.permutation(len(y))
    test, train = order[: len(y) // 3], order[len(y) // 3 :]
    w = fit_logistic(x[train], y[train])
    p = 1 / (1 + np.exp(-(w[0] + x[test] @ w[1:])))
    report: dict[str, Any] = {
        "n": len(y), "positives": int(y.sum()), "held_out": len(test),
        "brier": float(np.mean((p - y[test]) ** 2)),
        "ece": calibration_error(p, y[test]),
        "accuracy@0.5": float(np.mean((p >= 0.5) == (y[test] == 1))),
    }
    w_all = fit_logistic(x, y)
    cal = Calibration(tuple(round(float(v), 3) for v in w_all[1:]), round(float(w_all[0]), 3))
    report["calibration"] = {"features": FEATURES, "weights": cal.weights, "bias": cal.bias}
    return report
