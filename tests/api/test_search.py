"""HTTP: health, readiness and knowledge search, on the session sample knowledge base."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.knowledge.base import KnowledgeBase
from app.main import create_app


@pytest.fixture(scope="module")
def client(sample_kb: KnowledgeBase) -> Iterator[TestClient]:
    with TestClient(create_app(sample_kb.settings, kb=sample_kb)) as c:
        yield c


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_after_startup(client: TestClient, sample_kb: KnowledgeBase) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["model_loaded"] is True
    assert body["collections"] == sample_kb.manifest.counts()
    assert body["collections"]["articles"]["documents"] > 0


def test_readyz_is_503_until_the_lifespan_has_run(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path,
) -> None:
    kb = make_kb(embedder_=lambda: pytest.fail("model loaded"))
    client = TestClient(create_app(kb.settings, kb=kb))  # not entered: no startup
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "starting"
    assert response.json()["model_loaded"] is False


def test_search(client: TestClient, sample_kb: KnowledgeBase) -> None:
    response = client.get("/api/v1/search", params={"q": "where is my order"})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "where is my order"
    results = body["results"]
    assert len(results) == 5  # the default k
    docs = {d.doc_id: d for d in sample_kb.manifest.documents("articles").values()}
    for hit in results:
        assert {"article_id", "chunk_id", "title", "url", "score", "snippet"} <= set(hit)
        doc = docs[hit["article_id"]]
        assert (hit["title"], hit["url"]) == (doc.title, doc.url)
        assert hit["url"].startswith("https://")
        assert isinstance(hit["score"], float)
    assert len({h["article_id"] for h in results}) == len(results)
    assert [h["score"] for h in results] == sorted((h["score"] for h in results), reverse=True)
    assert {"track-order", "late-or-missing-package"} & {h["article_id"] for h in results}


def test_search_k_and_filters(client: TestClient) -> None:
    response = client.get("/api/v1/search", params={"q": "cancel my membership", "k": 2,
                                                    "locale": "es"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert 1 <= len(results) <= 2
    assert all(h["locale"].startswith("es") for h in results)
    billing = client.get("/api/v1/search", params={"q": "refund", "k": 3,
                                                   "category": "billing"}).json()["results"]
    assert billing and all(h["category"] == "billing" for h in billing)


def test_search_conversations(client: TestClient, sample_kb: KnowledgeBase) -> None:
    response = client.get("/api/v1/search", params={"q": "stop texting me about sales",
                                                    "collection": "conversations", "k": 3})
    assert response.status_code == 200
    results = response.json()["results"]
    conversations = {d for _, d in sample_kb.manifest.documents("conversations")}
    assert results and all(h["collection"] == "conversations" for h in results)
    assert all(h["article_id"] in conversations for h in results)


@pytest.mark.parametrize("params", [
    {},
    {"q": ""},
    {"q": "refund", "collection": "faqs"},
    {"q": "refund", "collection": ["articles", "faqs"]},
    {"q": "refund", "k": 0},
    {"q": "refund", "k": 51},
    {"q": "x" * 2001},
], ids=["missing-q", "empty-q", "unknown-collection", "one-unknown-collection", "k-zero",
        "k-too-big", "q-too-long"])
def test_invalid_requests_are_422(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/api/v1/search", params=params)  # type: ignore[arg-type]
    assert response.status_code == 422
    if "collection" in params:
        assert "faqs" in response.text
