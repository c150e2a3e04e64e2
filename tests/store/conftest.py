"""Store fixtures: every database-backed test runs on SQLite (tmp_path) and on PostgreSQL.

PostgreSQL gets a fresh database per test session (``supportbot_test_<random>``), dropped at the
end. When it is unreachable the PostgreSQL tests skip, unless ``CI`` is set or
``SUPPORTBOT_REQUIRE_POSTGRES=1``, where they fail. ``SUPPORTBOT_TEST_POSTGRES_URL`` points at
the server's maintenance database (default: local ``postgres`` with trust auth).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, make_url, text
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.store import Database, Store
from app.store.models import Base

BACKENDS = ["sqlite", "postgresql"]
# Read at import: the session-wide ``clean_environment`` fixture later removes SUPPORTBOT_* names.
PG_ADMIN_URL = os.environ.get(
    "SUPPORTBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Whether an unreachable PostgreSQL fails the run instead of skipping its tests.
POSTGRES_REQUIRED = bool(os.environ.get("CI")) or (
    os.environ.get("SUPPORTBOT_REQUIRE_POSTGRES") == "1"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database for this test session."""
    admin = create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"supportbot_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as e:
        admin.dispose()
        where = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        reason = f"PostgreSQL is unreachable at {where}: {e.orig}"
        if POSTGRES_REQUIRED:
            pytest.fail(f"{reason} (required: CI or SUPPORTBOT_REQUIRE_POSTGRES=1 is set)")
        pytest.skip(f"{reason}; start it or set SUPPORTBOT_TEST_POSTGRES_URL")
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def backend_settings(
    request: pytest.FixtureRequest, backend: str, data_dir: Path
) -> Settings:
    """Settings for ``backend``: SQLite under ``data_dir`` or the session's PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    return Settings(data_dir=data_dir, database_url=url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One migrated database per backend for the whole session."""
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("store"))
    db = Database.from_settings(settings)
    yield db
    db.dispose()


@pytest.fixture
def store(database: Database) -> Store:
    """A ``Store`` over an emptied database."""
    with database.session() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
    return Store(database)
