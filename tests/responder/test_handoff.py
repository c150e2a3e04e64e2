"""The hand-off intent classifier: negation veto, threshold choice, leave-one-domain-out
training, the artefact, and how its verdict enters the escalation rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.domain import Reason
from app.errors import ConfigError
from app.responder.escalation import EscalationInputs, decide
from app.responder.handoff import (
    Example,
    HandoffModel,
    choose_threshold,
    design,
    fold_threshold,
    negated_request,
    out_of_fold,
    train,
)
from app.responder.handoff_cues import CUE_NAMES, cues


@pytest.mark.parametrize("text", [
    "no need for a human, just tell me the opening hours",
    "I don't want to talk to anyone, just cancel it",
    "Please don't make me speak to an agent, I only need the invoice",
    "I'd rather not call anyone",
])
def test_a_refused_person_is_a_negation(text: str) -> None:
    assert negated_request(text)


@pytest.mark.parametrize("text", [
    "can I talk to someone real", "why can't I just speak to a person?",
    "the agent I spoke to fixed it, thanks", "human please",
])
def test_requests_and_mentions_are_not_negations(text: str) -> None:
    assert not negated_request(text)


def test_the_threshold_keeps_false_positives_within_the_budget() -> None:
    negatives = np.linspace(0.0, 0.99, 100)  # 100 others, the top ones scoring high
    positives = np.array([0.2, 0.995, 0.999])
    probs = np.r_[negatives, positives]
    labels = np.r_[np.zeros(100, int), np.ones(3, int)]
    threshold = choose_threshold(probs, labels, max_fpr=0.02)
    assert np.mean(negatives >= threshold) <= 0.02
    assert np.mean(negatives >= threshold) == pytest.approx(0.02)  # and no stricter
    assert choose_threshold(probs, labels, max_fpr=0.0) > negatives.max()


def test_the_fold_threshold_holds_every_fold_to_the_budget() -> None:
    # fold "a": others spread low; fold "b": a few others score high
    probs = np.r_[np.linspace(0.0, 0.5, 50), np.linspace(0.0, 0.9, 50), [0.95, 0.97]]
    labels = np.r_[np.zeros(100, int), np.ones(2, int)]
    groups = np.array(["a"] * 50 + ["b"] * 50 + ["a", "b"])
    pooled = choose_threshold(probs, labels, max_fpr=0.02)
    strict = fold_threshold(probs, labels, groups, max_fpr=0.02)
    assert strict >= pooled
    for g in ("a", "b"):
        others = probs[(groups == g) & (labels == 0)]
        assert np.mean(others >= strict) <= 0.02


def _toy(rng: np.random.Generator, n: int, domain: str, shift: float) -> tuple[
        list[Example], np.ndarray]:
    """Requests point along axis 0, others along axis 1; each domain adds its own offset on
    axis 2 (a topic) that says nothing about intent."""
    asks = rng.random(n) < 0.4
    x = rng.normal(0, 0.3, (n, 4))
    x[:, 0] += asks * 2.0
    x[:, 1] += (~asks) * 2.0
    x[:, 2] += shift
    return [Example(f"{domain}-{i}", bool(a), domain) for i, a in enumerate(asks)], x


def test_leave_one_domain_out_reports_each_domain_from_a_model_fitted_without_it() -> None:
    rng = np.random.default_rng(3)
    parts = [_toy(rng, 120, d, s) for d, s in
             (("a", -2.0), ("b", 0.0), ("c", 2.0), ("general", 0.5))]
    examples = [e for p in parts for e in p[0]]
    vectors = np.vstack([p[1] for p in parts]).astype(np.float32)
    model = train(examples, vectors, "toy-model", held_out_domains=("a", "b", "c"),
                  groups=("a", "b", "c"), max_fpr=0.02)
    assert set(model.report["held_out"]) == {"a", "b", "c"}
    for figures in model.report["held_out"].values():
        assert figures["recall"] >= 0.95 and figures["flagged_others"] <= 0.05
    labels = np.array([e.asks for e in examples])
    groups = np.array([e.domain for e in examples])
    oof = out_of_fold(design(vectors, [e.text for e in examples]), labels.astype(int), groups,
                      c=4.0)
    assert np.mean(oof[labels] > 0.5) > 0.9 and np.mean(oof[~labels] > 0.5) < 0.1
    assert model.asks_for_person(np.array([2.0, 0.0, 0.0, 0.0], np.float32), "b-1")
    assert not model.asks_for_person(np.array([0.0, 2.0, 0.0, 0.0], np.float32), "b-1")


def test_the_artefact_round_trips_and_refuses_another_embedding_model_or_cues(
        tmp_path: Path) -> None:
    weights = np.r_[np.array([1.0, -1.0]), np.zeros(len(CUE_NAMES))].astype(np.float32)
    weights[2 + CUE_NAMES.index("thanks")] = -2.0
    model = HandoffModel(weights, 0.25, 0.7, "model-a", {"examples": 2})
    path = model.save(tmp_path / "intent.json")
    again = HandoffModel.load(path, embedding_model="model-a")
    assert again.threshold == 0.7 and again.report == {"examples": 2}
    v = np.array([0.3, 0.1], np.float32)
    for text in ("get me a person", "thanks, all sorted"):
        assert again.probability(v, text) == pytest.approx(model.probability(v, text), abs=1e-6)
    assert model.probability(v, "thanks, all sorted") < model.probability(v, "get me a person")
    with pytest.raises(ConfigError, match="retrain"):
        HandoffModel.load(path, embedding_model="model-b")
    data = json.loads(path.read_text())
    data["cues"] = data["cues"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="other hand-off cues"):
        HandoffModel.load(path)
    with pytest.raises(ConfigError, match="supportbot eval handoff"):
        HandoffModel.load(tmp_path / "missing.json")


@pytest.mark.parametrize(("text", "on", "off"), [
    ("can i speek to an agnet", {"person", "request_verb", "phrase_rule"}, {"thanks"}),
    ("Is Marcus working today? He was handling my order.", {"named_colleague"}, {"person"}),
    ("thanks, the person on chat already waived the fee", {"thanks", "past_contact", "person"},
     {"negation", "named_colleague"}),
    ("AGENT. NOW. MY LAMP ARRIVED SMASHED", {"shouting", "person"}, {"thanks"}),
    ("put me through to your billing department", {"role", "request_verb"}, {"negation"}),
    ("how do I turn on call forwarding", {"product_feature"}, {"person", "phrase_rule"}),
    ("Ich möchte mit einem Mitarbeiter sprechen", {"other_language"}, {"person"}),
])
def test_cues_flag_who_is_asked_for_and_what_argues_against_it(
        text: str, on: set[str], off: set[str]) -> None:
    flags = dict(zip(CUE_NAMES, cues(text), strict=True))
    assert {name for name in on if flags[name] != 1.0} == set()
    assert {name for name in off if flags[name] != 0.0} == set()


def test_the_classifier_escalates_unless_the_customer_declines_a_person() -> None:
    asked = decide(EscalationInputs("is anyone there who could look at my line",
                                    retrieval_confidence=0.9, asks_for_person=0.93))
    assert asked.escalate and asked.reason == Reason.EXPLICIT_REQUEST
    assert "intent p=0.93" in asked.detail
    declined = decide(EscalationInputs("no need for a human, how do I reset the router",
                                       retrieval_confidence=0.9, asks_for_person=0.93))
    assert not declined.escalate
    quiet = decide(EscalationInputs("is anyone there who could look at my line",
                                    retrieval_confidence=0.9))
    assert not quiet.escalate  # without the classifier the phrase rules alone decide


def test_a_classifier_that_did_not_fire_overrules_the_phrase_rules() -> None:
    text = "are you a robot? that's ok, what's my card's daily limit?"
    rules_alone = decide(EscalationInputs(text, retrieval_confidence=0.9))
    assert rules_alone.escalate and rules_alone.reason == Reason.EXPLICIT_REQUEST
    judged = decide(EscalationInputs(text, retrieval_confidence=0.9, intent_decides=True))
    assert not judged.escalate
    fired = decide(EscalationInputs("talk to a human", retrieval_confidence=0.9,
                                    asks_for_person=0.99, intent_decides=True))
    assert fired.escalate and fired.detail == "intent p=0.99: talk to a human"
    # a message that is only a person needs no classifier
    terse = decide(EscalationInputs("customer service!!", retrieval_confidence=0.9,
                                    intent_decides=True))
    assert terse.escalate and terse.reason == Reason.EXPLICIT_REQUEST
    # safety topics come before the classifier's verdict
    hacked = decide(EscalationInputs("someone hacked my account", retrieval_confidence=0.9,
                                     intent_decides=True))
    assert hacked.escalate and hacked.reason == Reason.ACCOUNT_TAKEOVER
