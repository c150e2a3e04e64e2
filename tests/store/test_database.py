"""Engine selection, SQLite settings, and migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.config import Settings
from app.errors import ConfigError
from app.store import Database, Store, current_revision, head_revision, make_engine, upgrade
from app.store.database import VERSION_TABLE, database_url
from app.store.models import Base

TABLES = {"conversations", "messages", "tickets", "feedback", "variant_assignments"}


def settings(tmp_path: Path, url: str | None = None) -> Settings:
    return Settings(data_dir=tmp_path, database_url=url, _env_file=None)  # type: ignore[call-arg]


def test_default_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    url = database_url(settings(tmp_path))
    assert url.drivername == "sqlite+pysqlite"
    assert url.database == str(tmp_path / "supportbot.sqlite3")


@pytest.mark.parametrize("given", ["postgresql://u:p@db:5432/sb", "postgres://u:p@db:5432/sb"])
def test_plain_postgres_urls_use_psycopg3(tmp_path: Path, given: str) -> None:
    url = database_url(settings(tmp_path, given))
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.database, url.username) == ("db", "sb", "u")


def test_explicit_driver_is_kept(tmp_path: Path) -> None:
    url = database_url(settings(tmp_path, "postgresql+psycopg2://u@db/sb"))
    assert url.drivername == "postgresql+psycopg2"


def test_bad_url_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        make_engine(settings(tmp_path, "not a url"))


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(settings(tmp_path / "nested"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) >= 1000
        assert engine.pool._pre_ping
        assert (tmp_path / "nested" / "supportbot.sqlite3").exists()
    finally:
        engine.dispose()


def test_fresh_sqlite_migrates_twice(tmp_path: Path) -> None:
    engine = make_engine(settings(tmp_path))
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_creates_every_table(database: Database) -> None:
    database.upgrade()
    database.upgrade()
    assert current_revision(database.engine) == head_revision()
    assert database.ping()
    names = set(inspect(database.engine).get_table_names())
    assert TABLES | {VERSION_TABLE} <= names


def test_migrations_match_the_models(database: Database) -> None:
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        diff = [d for d in compare_metadata(ctx, Base.metadata)
                if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)]
    assert diff == []


def test_indexes_for_the_hot_lookups(database: Database) -> None:
    insp = inspect(database.engine)
    indexed = {
        table: {tuple(ix["column_names"]) for ix in insp.get_indexes(table)}
        | {tuple(uc["column_names"]) for uc in insp.get_unique_constraints(table)}
        for table in TABLES
    }
    assert ("created_at",) in indexed["conversations"]
    assert ("variant",) in indexed["conversations"]
    assert ("conversation_id", "seq") in indexed["messages"]
    assert ("conversation_id",) in indexed["tickets"]
    assert ("conversation_id",) in indexed["feedback"]
    assert ("workspace", "user_id", "experiment") in indexed["variant_assignments"]


def test_ping_is_false_when_the_database_is_unreachable() -> None:
    db = Database(create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                                connect_args={"connect_timeout": 2}))
    try:
        assert db.ping() is False
    finally:
        db.dispose()


def test_store_from_settings_migrates(tmp_path: Path) -> None:
    store = Store.from_settings(settings(tmp_path))
    try:
        assert store.db.ping()
        conv = store.conversations.create(channel="whatsapp")
        assert store.conversations.get(conv.id).channel == "whatsapp"
    finally:
        store.close()
