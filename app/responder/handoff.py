"""Learned hand-off intent: does this message ask for a person?

A logistic model over the sentence embedding the engine already computes for the message
(all-MiniLM-L6-v2, 384 dimensions) plus a few domain-free lexical cues (``handoff_cues``: who
is asked for, how, thanks, past contact, negations, the phrase rules' verdict), trained by
``supportbot eval handoff --save`` on the examples in ``knowledge/benchmarks/handoff/`` plus
ordinary customer questions, and loaded from a small JSON artefact (``data/handoff_intent.json``:
weights, bias, threshold, the model and cue list it was fitted on, and its leave-one-domain-out
figures) when one is there: none is shipped until its held-out figures earn it. Scoring is the
cues' regular expressions and one dot product: no scikit-learn at run time.

With a classifier the classifier decides (the phrase rules are among its features, so it can
overrule a rule a mere mention of people set off); without one the phrase rules decide alone.
Safety topics still come first either way, and a request is vetoed when the customer says they
do not want a person ("no need for a human, just…", ``negated_request``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ConfigError
from app.responder.handoff_cues import CUE_NAMES, cues

ARTEFACT = Path(__file__).with_name("data") / "handoff_intent.json"
MAX_FPR = 0.03  # the threshold keeps each fold's out-of-fold false hand-offs at most this share
C = 4.0  # inverse L2 strength

_PEOPLE = (r"(human|humans|person|people|agent|agents|someone|somebody|anyone|anybody|staff"
           r"|representative|rep|operator|team|advisor|adviser|one|call|phone|chat|talk|speak)")
# "no need for a human", "I don't want to talk to anyone", "without calling", "rather not speak
# to anyone": a negation governing the person (or the talking) in the same clause.
_NEGATED = re.compile(
    r"\b(no need (for|to)|don'?t (need|want|wanna|have to|make me)|do not (need|want|make me)"
    r"|doesn'?t need"
    r"|without|rather not|never want|not (looking|trying|asking) (for|to)|no (human|person"
    r"|agent|call)s?\b|not interested in)\b[^.!?;]{0,40}?\b" + _PEOPLE + r"\b"
    # French, Spanish, Portuguese, Italian, German: "je ne veux parler à personne", "no quiero
    # hablar con nadie", "não preciso falar com ninguém", "non c'è bisogno di un operatore"
    r"|\b(ne (veux|souhaite) parler a personne|pas besoin d'un (conseiller|agent|humain)"
    r"|no (quiero|necesito) hablar con nadie|no hace falta (un|una) (agente|persona)"
    r"|nao (quero|preciso) falar com ninguem|non c'?e bisogno di (un|una|parlare)"
    r"|(will|muss) (mit )?niemand(em)? (sprechen|reden))", re.I)


def negated_request(message: str) -> bool:
    """The customer says they do not want a person ("no need for a human, just tell me…")."""
    from app.responder.escalation import normalize

    return bool(_NEGATED.search(normalize(message)))


@dataclass(frozen=True)
class HandoffModel:
    """A fitted hand-off intent classifier.

    Args:
        weights: one per embedding dimension, then one per cue (``CUE_NAMES``).
        bias: the intercept.
        threshold: probability at or above which a message asks for a person.
        embedding_model: the embedding model the weights belong to (a mismatch refuses to load).
        report: how it was fitted and its held-out figures (for the README and reviewers).

    Example:
        >>> model = HandoffModel.load()
        >>> text = "can I talk to someone real"
        >>> model.asks_for_person(vector_of(text), text)
        True
    """

    weights: np.ndarray
    bias: float
    threshold: float
    embedding_model: str
    report: dict[str, Any] = field(default_factory=dict)

    def probability(self, vector: np.ndarray, message: str) -> float:
        x = np.concatenate([vector.astype(np.float32), cues(message)])
        z = float(np.dot(self.weights, x)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def asks_for_person(self, vector: np.ndarray, message: str) -> bool:
        return self.probability(vector, message) >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {"weights": [round(float(w), 6) for w in self.weights], "bias": self.bias,
                "threshold": self.threshold, "embedding_model": self.embedding_model,
                "cues": list(CUE_NAMES), "report": self.report}

    def save(self, path: Path = ARTEFACT) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path = ARTEFACT, embedding_model: str | None = None) -> HandoffModel:
        """Read an artefact (``ConfigError`` naming the fix when it is missing or does not
        belong to ``embedding_model``)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"{path}: no hand-off intent model; train one with "
                              "'supportbot eval handoff --save'") from e
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: unreadable hand-off intent model ({e}); retrain it "
                              "with 'supportbot eval handoff --save'") from e
        if data.get("cues") != list(CUE_NAMES):
            raise ConfigError(f"{path} was trained on other hand-off cues; retrain it with "
                              "'supportbot eval handoff --save'")
        model = cls(np.asarray(data["weights"], dtype=np.float32), float(data["bias"]),
                    float(data["threshold"]), str(data["embedding_model"]),
                    dict(data.get("report") or {}))
        if embedding_model is not None and model.embedding_model != embedding_model:
            raise ConfigError(
                f"{path} was trained on embeddings of {model.embedding_model!r}, not "
                f"{embedding_model!r}: retrain it with 'supportbot eval handoff --save'")
        return model


# ---- fitting (offline: ``supportbot eval handoff``; scikit-learn imported only here) ---------

@dataclass(frozen=True)
class Example:
    """One training message: its text, whether it asks for a person, and its domain."""

    text: str
    asks: bool
    domain: str


def design(vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    """The classifier's inputs: each message's embedding, then its cues."""
    return np.hstack([np.asarray(vectors, dtype=np.float32),
                      np.vstack([cues(t) for t in texts])]) if len(texts) else np.asarray(
        vectors, dtype=np.float32)


def fit(vectors: np.ndarray, labels: np.ndarray, c: float = C) -> tuple[np.ndarray, float]:
    """Balanced, L2-regularised logistic regression; returns (weights, bias)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit(vectors, labels)
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def _probabilities(vectors: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(vectors @ weights + bias, -30, 30))))


def choose_threshold(probs: np.ndarray, labels: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold (most recall) whose false-positive rate stays ≤ ``max_fpr``."""
    negatives = np.sort(probs[labels == 0])[::-1]
    allowed = math.floor(max_fpr * len(negatives))
    # strictly above the (allowed+1)-th highest negative score
    cut = float(negatives[allowed]) if allowed < len(negatives) else 0.0
    return float(np.nextafter(cut, 2.0))


def fold_threshold(probs: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                   max_fpr: float) -> float:
    """A threshold that keeps the false positives of EVERY group (fold) ≤ ``max_fpr``, not
    just of all of them pooled: the largest of the groups' own thresholds, so one help center
    whose ordinary questions look like requests sets the bar for all."""
    return max(choose_threshold(probs[groups == g], labels[groups == g], max_fpr)
               for g in np.unique(groups) if np.any(labels[groups == g] == 0))


def out_of_fold(vectors: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                c: float) -> np.ndarray:
    """Each example's probability from a model fitted without its group."""
    probs = np.zeros(len(labels))
    for g in np.unique(groups):
        test = groups == g
        w, b = fit(vectors[~test], labels[~test], c)
        probs[test] = _probabilities(vectors[test], w, b)
    return probs


def train(examples: list[Example], vectors: np.ndarray, embedding_model: str, *,
          held_out_domains: Sequence[str] = (), groups: Sequence[str] = (),
          max_fpr: float = MAX_FPR, c: float = C) -> HandoffModel:
    """Fit on every example, the threshold chosen out of fold: the one that keeps the
    false positives of models fitted without each of ``groups`` (domains; everything else,
    ``general`` included, is always trained on) ≤ ``max_fpr``. For each of
    ``held_out_domains`` the report gives the recall on requests and the share of other
    messages flagged by a model and a threshold fitted without that domain."""
    labels = np.array([e.asks for e in examples], dtype=int)
    domains = np.array([e.domain for e in examples])
    vectors = design(vectors, [e.text for e in examples])
    report: dict[str, Any] = {"examples": len(examples), "requests": int(labels.sum()),
                              "max_fpr": max_fpr, "c": c, "held_out": {}}
    for domain in held_out_domains:
        test = domains == domain
        train_idx = ~test
        inner = np.where(np.isin(domains[train_idx], list(groups)), domains[train_idx],
                         "general")
        oof = out_of_fold(vectors[train_idx], labels[train_idx], inner, c)
        threshold = fold_threshold(oof, labels[train_idx], inner, max_fpr)
        w, b = fit(vectors[train_idx], labels[train_idx], c)
        p = _probabilities(vectors[test], w, b)
        asks = labels[test] == 1
        report["held_out"][domain] = {
            "requests": int(asks.sum()), "others": int((~asks).sum()),
            "recall": float(np.mean(p[asks] >= threshold)) if asks.any() else float("nan"),
            "flagged_others": float(np.mean(p[~asks] >= threshold)) if (~asks).any()
            else float("nan"),
            "threshold": threshold,
            "missed": [examples[i].text for i, q in zip(np.flatnonzero(test), p, strict=True)
                       if labels[i] == 1 and q < threshold]}
    folds = np.where(np.isin(domains, list(groups)), domains, "general")
    threshold = fold_threshold(out_of_fold(vectors, labels, folds, c), labels, folds, max_fpr)
    weights, bias = fit(vectors, labels, c)
    return HandoffModel(weights, bias, threshold, embedding_model, report)
