"""Fit the responder's confidence calibration.

``supportbot eval calibrate --domains [--plot FILE.png]`` fits on the four help centers of the
benchmark (``knowledge/`` and ``knowledge/benchmarks/``) and reports it leave one domain out:
Brier score, expected calibration error and a reliability table of held-out predictions, and
the decision curve (answered, right article in the top 2, out-of-scope not answered) per
threshold; then prints the weights fitted on all four, to paste into
``app/responder/confidence.py``. This is the fit the engine ships.

``supportbot eval calibrate [--data-dir DIR]`` is the older single-KB fit on the labelled sets
in ``knowledge/eval/`` (a held-out third), kept for a team calibrating on its own help center.
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
        x.append(features(results, question))
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


# ---- every help center of the benchmark, leave one domain out ------------------------------

#: thresholds the decision curve is reported at
GRID = tuple(round(t, 2) for t in np.arange(0.2, 0.81, 0.05))
#: the threshold rule: the strictest threshold that still answers this share of answerable
#: questions (the issue's target), averaged over the domains it is chosen on
ANSWERED_TARGET = 0.90


def choose_threshold(curve: list[dict[str, Any]], domains: list[str]) -> float:
    """The largest grid threshold whose mean ``answered`` over ``domains`` is at least
    ``ANSWERED_TARGET`` (the lowest grid threshold when none is)."""
    ok = [c["threshold"] for c in curve
          if np.mean([c["per_domain"][d]["answered"] for d in domains]) >= ANSWERED_TARGET]
    return float(max(ok)) if ok else float(curve[0]["threshold"])


def domain_dataset(settings: Settings, progress: bool = False,
                   cache: Path | None = None) -> dict[str, dict[str, Any]]:
    """Per domain: features and labels of its first-turn answerable questions (label 1 when the
    top article is gold) and out-of-scope questions (label 0), whether each is answerable, and
    whether a gold article is in the top 2. Each domain is ingested into ``cache/<domain>``
    (default ``<data_dir>/benchmarks``; incremental), as ``supportbot eval domains`` does."""
    from app.container import build, scratch_store
    from eval.domains import load_domains
    from pipelines.ingest import Ingester

    out: dict[str, dict[str, Any]] = {}
    for domain in load_domains():
        domain_settings = settings.model_copy(update={
            "data_dir": (cache or settings.data_dir / "benchmarks") / domain.name,
            "database_url": None,
            "chroma_host": None})
        kb = knowledge(domain_settings).kb
        Ingester(kb, progress=progress).run([domain.articles], "articles")
        cases = [(q.text, q.gold, True) for q in domain.questions
                 if not q.history and not q.also_request]
        cases += [(q.text, (), False) for q in domain.out_of_scope]
        x, y, answerable, top2 = [], [], [], []
        with scratch_store(domain_settings) as store, build(
                domain_settings, kb=kb, store=store, handoff=None) as engine:
            for text, gold, ok in cases:
                results = engine.retriever.search(text, 4, ("articles",),
                                                  vector=engine.responder.embed(text))
                x.append(features(results, text))
                y.append(1.0 if ok and results and results[0].article_id in gold else 0.0)
                answerable.append(ok)
                top2.append(ok and bool({r.article_id for r in results[:2]} & set(gold)))
        out[domain.name] = {"x": np.array(x), "y": np.array(y),
                            "answerable": np.array(answerable), "top2": np.array(top2)}
    return out


def fitted_without(data: dict[str, dict[str, Any]], exclude: str | None) -> Calibration:
    """The calibration fitted on every domain of ``data`` but ``exclude``."""
    names = [n for n in data if n != exclude]
    w = fit_logistic(np.vstack([data[n]["x"] for n in names]),
                     np.concatenate([data[n]["y"] for n in names]))
    return Calibration(tuple(float(v) for v in w[1:]), float(w[0]))


def decisions(p: np.ndarray, part: dict[str, Any], threshold: float) -> dict[str, float]:
    """What answering at ``p >= threshold`` would do on one domain."""
    answer = p >= threshold
    ok = part["answerable"]
    return {"answered": float(answer[ok].mean()),
            "right_top2": float((answer & part["top2"])[ok].mean()),
            "oos_not_answered": float((~answer[~ok]).mean())}


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed frequency per equal-width bin (non-empty bins only)."""
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        mask = (p >= lo) & (p < hi if hi < 1 else p <= hi)
        if mask.any():
            rows.append({"lo": float(lo), "hi": float(hi), "n": int(mask.sum()),
                         "predicted": float(p[mask].mean()), "observed": float(y[mask].mean())})
    return rows


def calibrate_domains(settings: Settings, progress: bool = False) -> dict[str, Any]:
    """Leave one domain out: for each domain, a model fitted on the other three predicts it;
    Brier, ECE, the reliability table (pooled held-out predictions) and the decision curve per
    threshold (held-out means); then the weights fitted on all four, to paste."""
    data = domain_dataset(settings, progress)
    names = list(data)
    held: dict[str, np.ndarray] = {}
    for name in names:
        others = [n for n in names if n != name]
        w = fit_logistic(np.vstack([data[n]["x"] for n in others]),
                         np.concatenate([data[n]["y"] for n in others]))
        held[name] = 1 / (1 + np.exp(-(w[0] + data[name]["x"] @ w[1:])))
    pooled_p = np.concatenate([held[n] for n in names])
    pooled_y = np.concatenate([data[n]["y"] for n in names])
    curve = []
    for t in GRID:
        per = {n: decisions(held[n], data[n], t) for n in names}
        curve.append({"threshold": t, "per_domain": per, "mean": {
            k: float(np.mean([per[n][k] for n in names])) for k in per[names[0]]}})
    chosen = {}
    for name in names:
        t = choose_threshold(curve, [n for n in names if n != name])
        chosen[name] = {"threshold": t, **decisions(held[name], data[name], t)}
    w_all = fit_logistic(np.vstack([data[n]["x"] for n in names]),
                         np.concatenate([data[n]["y"] for n in names]))
    cal = Calibration(tuple(round(float(v), 3) for v in w_all[1:]), round(float(w_all[0]), 3))
    return {
        "threshold": choose_threshold(curve, names),
        "threshold_held_out": chosen,
        "domains": {n: {"n": len(data[n]["y"]), "positives": int(data[n]["y"].sum()),
                        "brier": float(np.mean((held[n] - data[n]["y"]) ** 2)),
                        "ece": calibration_error(held[n], data[n]["y"])} for n in names},
        "brier": float(np.mean((pooled_p - pooled_y) ** 2)),
        "ece": calibration_error(pooled_p, pooled_y),
        "reliability": reliability(pooled_p, pooled_y),
        "curve": curve,
        "calibration": {"features": FEATURES, "weights": cal.weights, "bias": cal.bias},
    }


def reliability_plot(report: dict[str, Any], path: Path) -> Path:
    """The reliability diagram of the held-out predictions, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["reliability"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect calibration")
    ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], marker="o",
            label=f"held-out domains (Brier {report['brier']:.3f})")
    for r in rows:
        ax.annotate(str(r["n"]), (r["predicted"], r["observed"]), fontsize=7,
                    textcoords="offset points", xytext=(4, -10))
    ax.set(xlabel="predicted P(top article answers)", ylabel="observed frequency",
           xlim=(0, 1), ylim=(0, 1), title="Answer confidence, leave one domain out")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
