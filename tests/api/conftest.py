"""API fixtures: one app per module and backend, over the session's sample knowledge base.

``api`` is parametrized over SQLite (a tmp file) and PostgreSQL (the session's fresh database
from ``tests/store/conftest.py``; an unreachable server fails the run when ``CI`` is set).
Tests share the database within a session, so each one uses its own user ids and workspace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.knowledge.base import KnowledgeBase
from app.main import create_app
from app.responder.variants import DEFAULT_VARIANTS_PATH
from app.store import Store
from tests.store.conftest import BACKENDS, postgres_url  # noqa: F401  (fixture re-used here)


@dataclass
class Api:
    """A started app, its client and what it was built from."""

    client: TestClient
    app: FastAPI
    store: Store
    settings: Settings
    backend: str


def unique(prefix: str) -> str:
    """An id no other test (or earlier session on the same database) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def backend_settings(request: pytest.FixtureRequest, backend: str, data_dir: Path,
                     make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    """Settings for ``backend``: SQLite under ``data_dir`` or the session's PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    return make_settings(data_dir, database_url=url, variants_path=DEFAULT_VARIANTS_PATH,
                         **overrides)


def started(settings: Settings, kb: KnowledgeBase, backend: str) -> Iterator[Api]:
    """Build the app on ``kb`` and a store for ``settings``, run its lifespan, close it after."""
    store = Store.from_settings(settings)
    app = create_app(settings, kb=kb, store=store)
    try:
        with TestClient(app) as client:
            yield Api(client, app, store, settings, backend)
    finally:
        store.close()


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest, sample_kb: KnowledgeBase,
        make_settings: Callable[..., Settings],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app over the sample KB and a store on each backend (one per module)."""
    backend = request.param
    settings = backend_settings(request, backend, tmp_path_factory.mktemp(f"api-{backend}"),
                                make_settings)
    yield from started(settings, sample_kb, backend)


@pytest.fixture(scope="module")
def sqlite_api(sample_kb: KnowledgeBase, make_settings: Callable[..., Settings],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app over the sample KB with a SQLite store, for endpoints that store nothing."""
    settings = make_settings(tmp_path_factory.mktemp("api-stateless"),
                             variants_path=DEFAULT_VARIANTS_PATH)
    yield from started(settings, sample_kb, "sqlite")


def parse_sse(lines: Iterator[str]) -> list[tuple[str, Any]]:
    """Server-Sent Events as (event, JSON data), per the WHATWG parsing rules."""
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data:
        events.append((name, json.loads("\n".join(data))))
    return events


@pytest.fixture(scope="session")
def sse() -> Callable[[Iterator[str]], list[tuple[str, Any]]]:
    return parse_sse
