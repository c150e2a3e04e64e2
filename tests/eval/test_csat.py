"""The CSAT proxy: hand-computed scores, features, loading, and the fit on past conversations."""

from __future__ import annotations

import pandas as pd
import pytest

from app.responder.sentiment import score
from eval.metrics.csat import (
    DEFAULT_WEIGHTS,
    FEATURES,
    CsatFeatures,
    FitReport,
    csat_proxy,
    csat_table,
    features_from_conversation,
    features_from_eval_row,
    fit_weights,
    sentiment_features,
)
from pipelines.conversations import CONVERSATIONS_DIR, load_conversations
from tests.conftest import conversation_record

WEIGHTS = {"bias": 3.0, "resolved": 1.0, "turns": -0.5, "escalated": -1.0,
           "last_sentiment": 1.0, "sentiment_change": 0.5, "latency_s": -0.1}


def test_proxy_by_hand() -> None:
    f = CsatFeatures(resolved=1, turns=2, escalated=0, last_sentiment=0.4,
                     sentiment_change=0.6, latency_s=2.0)
    # 3 + 1·1 - 0.5·2 - 1·0 + 1·0.4 + 0.5·0.6 - 0.1·2 = 3.5
    assert csat_proxy(f, WEIGHTS) == pytest.approx(3.5)
    assert csat_proxy({name: getattr(f, name) for name in FEATURES}, WEIGHTS) == pytest.approx(3.5)


def test_proxy_is_clipped_to_one_to_five() -> None:
    low = CsatFeatures(resolved=0, turns=20, escalated=1, last_sentiment=-1, sentiment_change=-2)
    high = CsatFeatures(resolved=1, turns=0, escalated=0, last_sentiment=1, sentiment_change=2)
    assert csat_proxy(low, WEIGHTS) == 1.0  # 3 - 10 - 1 - 1 - 1 = -10 → 1
    assert csat_proxy(high, WEIGHTS | {"bias": 9.0}) == 5.0


def test_proxy_validation_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match="latency_s"):
        csat_proxy({"resolved": 1, "turns": 1, "escalated": 0, "last_sentiment": 0,
                    "sentiment_change": 0}, WEIGHTS)
    with pytest.raises(ValueError, match="bias"):
        csat_proxy(CsatFeatures(1, 1, 0, 0, 0), {k: v for k, v in WEIGHTS.items() if k != "bias"})


def test_sentiment_features() -> None:
    assert sentiment_features([]) == (0.0, 0.0)
    assert sentiment_features([-0.2]) == (-0.2, 0.0)
    last, change = sentiment_features([0.2, -0.4, 0.5])
    assert last == 0.5 and change == pytest.approx(0.3)  # 0.5 - 0.2


def test_features_from_conversation() -> None:
    first = score("my order is late and nobody answers")
    last = score("Great, thank you so much!")
    f = features_from_conversation(conversation_record())
    assert (f.resolved, f.turns, f.escalated, f.latency_s) == (1.0, 2.0, 0.0, 0.0)
    assert f.last_sentiment == last and f.sentiment_change == pytest.approx(last - first)
    agent = conversation_record(resolution="agent_resolved")
    assert features_from_conversation(agent).escalated == 1
    assert features_from_conversation(conversation_record(tier=2)).escalated == 1
    assert features_from_conversation(conversation_record(status="abandoned")).resolved == 0


def test_features_from_eval_row() -> None:
    row = {"case_id": "c", "variant": "v", "kind": "single", "needs_human": False,
           "decision": "answer", "escalated": False, "clarified": False,
           "cited_article_ids": ["g"], "gold_article_ids": ["g"], "judge_correct": True,
           "similarity": None, "n_turns": 3, "sentiment_scores": [-0.5, 0.0, 0.25],
           "latency_ms": 1500.0}
    f = features_from_eval_row(row)
    assert f == CsatFeatures(resolved=1.0, turns=3.0, escalated=0.0, last_sentiment=0.25,
                             sentiment_change=0.75, latency_s=1.5)
    table = csat_table(pd.DataFrame([row]), WEIGHTS)
    # 3 + 1 - 1.5 + 0.25 + 0.375 - 0.15 = 2.975
    assert table.loc[0, "csat_proxy"] == pytest.approx(2.975)
    del row["latency_ms"]
    with pytest.raises(ValueError, match="'latency_ms'"):
        features_from_eval_row(row)


def test_fit_needs_enough_rated_conversations() -> None:
    with pytest.raises(ValueError, match="csat"):
        fit_weights([conversation_record(), conversation_record(csat=None)])


@pytest.fixture(scope="module")
def real_fit() -> tuple[dict[str, float], FitReport]:
    return fit_weights(load_conversations([CONVERSATIONS_DIR]))


def test_fit_on_past_conversations_ranks_csat(real_fit: tuple[dict[str, float],
                                                               FitReport]) -> None:
    weights, report = real_fit
    assert report.n_rated == 170 and report.n_holdout == 57  # round(170 / 3)
    # The figures pasted beside DEFAULT_WEIGHTS: 0.494 held out, 0.569 on all.
    assert report.spearman_holdout > 0.3
    assert report.spearman_all > 0.3
    assert report.spearman_holdout == pytest.approx(0.494, abs=1e-3)
    assert report.spearman_all == pytest.approx(0.569, abs=1e-3)
    assert set(report.fixed) == {"resolved", "latency_s"}  # constant in the rated data
    assert weights == pytest.approx(DEFAULT_WEIGHTS)  # the constants are this fit
    assert weights["escalated"] < 0 < weights["last_sentiment"]
