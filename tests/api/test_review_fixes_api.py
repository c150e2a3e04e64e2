"""Regressions from the code review at the HTTP/WS edge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.main import create_app
from app.responder.variants import DEFAULT_VARIANTS_PATH
from app.store import Store
from tests.api.conftest import Api


def test_nul_characters_are_refused_with_422(sqlite_api: Api) -> None:
    c = sqlite_api.client
    r = c.post("/api/v1/conversations", json={"user_id": "u\x00x", "channel": "web"})
    assert r.status_code == 422 and "NUL" in r.text
    r = c.post("/api/v1/conversations", json={"user_id": "nul-1", "channel": "web",
                                              "initial_message": "hi\x00there"})
    assert r.status_code == 422 and "NUL" in r.text
    r = c.post("/api/v1/answer", json={"question": "refund\x00?"})
    assert r.status_code == 422


def test_answer_history_turns_are_size_limited(sqlite_api: Api) -> None:
    r = sqlite_api.client.post("/api/v1/answer", json={
        "question": "and now?", "history": [{"role": "customer", "text": "x" * 20_001}]})
    assert r.status_code == 422
    assert "history" in r.text


def test_ws_read_frame_with_a_bad_seq_is_an_error_and_the_socket_lives(sqlite_api: Api) -> None:
    with sqlite_api.client.websocket_connect("/chat") as ws:
        ws.send_json({"type": "start", "user_id": "ws-review"})
        assert ws.receive_json()["type"] == "ready"
        ws.send_json({"type": "read", "seq": None})
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"type": "read", "seq": 0})
        assert ws.receive_json()["type"] == "receipt"


def test_the_same_app_can_be_started_twice(
        sample_kb: KnowledgeBase, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "twice", variants_path=DEFAULT_VARIANTS_PATH)
    store = Store.from_settings(settings)
    app = create_app(settings, kb=sample_kb, store=store)
    try:
        for _ in range(2):  # lifespan closes the query batcher; the next start revives it
            with TestClient(app) as client:
                r = client.post("/api/v1/answer",
                                json={"question": "how do I reset my password"})
                assert r.status_code == 200
                assert r.json()["citations"]
    finally:
        store.close()
