"""One turn path: the same multi-turn case through the HTTP API and through the evaluation
gives the same replies, decisions, citations and variant (an offline A/B measures exactly
what production runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.container import build
from app.knowledge.base import KnowledgeBase
from app.responder.variants import DEFAULT_VARIANTS_PATH
from app.store import Store
from eval.datasets import EvalCase
from eval.runner import run_case, run_eval
from tests.api.conftest import Api, unique

CASES = [
    # a question, a follow-up that leans on it, a hand-off request
    EvalCase("order-then-human", ["where is my order? it was due monday",
                                  "it still hasn't arrived", "let me talk to a person"],
             gold_article_ids=["track-order"], channel="sms"),
    # vague first (clarify), then clear: the clarified state carries over
    EvalCase("vague-then-clear", ["it doesn't work", "the smart lamp won't pair with the app"]),
    EvalCase("refund-twice", ["how long does a refund take",
                              "that didn't help, still no refund"]),
]


def _api_turns(api: Api, case: EvalCase, variant: str) -> list[dict[str, Any]]:
    first, *rest = case.turns
    created = api.client.post("/api/v1/conversations", json={
        "user_id": unique("equiv"), "channel": case.channel, "initial_message": first,
        "variant": variant})
    assert created.status_code == 201, created.text
    replies = [created.json()["reply"]]
    conv_id = created.json()["conversation"]["id"]
    for message in rest:
        posted = api.client.post(f"/api/v1/conversations/{conv_id}/messages",
                                 json={"message": message})
        assert posted.status_code == 200, posted.text
        replies.append(posted.json()["reply"])
    return replies


def _shape(text: str, decision: str, cited: list[str], variant: str) -> tuple[Any, ...]:
    return text, decision, cited, variant


@pytest.mark.parametrize("variant", ["control", "concise_empathetic"])
def test_api_and_evaluation_run_the_same_turns(
        api: Api, sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
        tmp_path: Path, variant: str) -> None:
    settings = make_settings(tmp_path / "eval", variants_path=DEFAULT_VARIANTS_PATH)
    scratch = Store.from_settings(settings)
    try:
        with build(settings, kb=sample_kb, store=scratch) as engine:
            chosen = engine.variants.get(variant)
            by_eval = {c.id: run_case(engine.conversations, c, chosen) for c in CASES}
            rows = run_eval(engine.conversations, CASES, [chosen], tmp_path / "out",
                            progress=False)
    finally:
        scratch.close()

    decisions = set()
    for case in CASES:
        over_http = _api_turns(api, case, variant)
        evaluated = by_eval[case.id]
        assert [_shape(r["message"], r["decision"], [c["id"] for c in r["citations"]],
                       r["variant"]) for r in over_http] == [
            _shape(r.text, str(r.decision), r.cited_article_ids, r.variant) for r in evaluated]
        assert [r["reason"] for r in over_http] == [r.reason for r in evaluated]
        row = rows[rows["case_id"] == case.id].iloc[0]
        final = over_http[-1]
        assert (row["answer"], row["decision"], list(row["cited_article_ids"]),
                row["variant"]) == (final["message"], final["decision"],
                                    [c["id"] for c in final["citations"]], variant)
        decisions |= {r["decision"] for r in over_http}
    # the cases exercise every branch of the turn: answered, clarified and handed off
    assert decisions == {"answer", "clarify", "escalate"}
