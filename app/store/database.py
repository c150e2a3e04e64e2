"""Engine, sessions and migrations: SQLite under the data dir by default, any URL via DATABASE_URL.

Example:
    >>> db = Database.from_settings(Settings(data_dir=Path(".data")))  # migrates to head
    >>> with db.session() as session:
    ...     session.execute(text("SELECT 1"))
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from app.config import Settings
from app.errors import ConfigError

SQLITE_FILENAME = "supportbot.sqlite3"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Our own version table, so the schema can share a database with other Alembic-managed apps.
VERSION_TABLE = "supportbot_alembic_version"
_PG_MIGRATION_LOCK = 7_305_001  # pg_advisory_xact_lock key: one migrator at a time
_SQLITE_BUSY_TIMEOUT_S = 30


def database_url(settings: Settings) -> URL:
    """The database URL ``settings`` select.

    ``DATABASE_URL`` wins (``postgresql://`` and ``postgres://`` are rewritten to the installed
    psycopg 3 driver); otherwise ``<data_dir>/supportbot.sqlite3``.
    """
    if not settings.database_url:
        return URL.create("sqlite+pysqlite", database=str(settings.data_dir / SQLITE_FILENAME))
    try:
        url = make_url(settings.database_url.strip())
    except ArgumentError as e:
        raise ConfigError(
            f"DATABASE_URL is not a database URL ({e}); use e.g. "
            "postgresql://user:password@host:5432/dbname, or unset it for SQLite"
        ) from e
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
    finally:
        cursor.close()


def make_engine(settings: Settings, **engine_kwargs: Any) -> Engine:
    """Build the engine ``settings`` select (see ``database_url``).

    SQLite gets WAL mode, foreign keys and a busy timeout on every connection; every engine
    pings connections before use. ``engine_kwargs`` go to ``create_engine`` (e.g. ``echo``).
    """
    url = database_url(settings)
    engine_kwargs.setdefault("pool_pre_ping", True)
    if url.get_backend_name() != "sqlite":
        try:
            return create_engine(url, **engine_kwargs)
        except (ArgumentError, ImportError) as e:  # unknown dialect or missing driver
            raise ConfigError(
                f"cannot use DATABASE_URL {url.render_as_string(hide_password=True)}: {e}; "
                "supportbot supports postgresql:// (psycopg 3) and sqlite:///path"
            ) from e
    connect_args = engine_kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", _SQLITE_BUSY_TIMEOUT_S)
    if url.database in (None, "", ":memory:"):
        engine_kwargs.setdefault("poolclass", StaticPool)  # one shared in-memory database
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args=connect_args, **engine_kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config() -> Config:
    """An Alembic config for our migrations, built in code (there is no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["version_table"] = VERSION_TABLE
    return cfg


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise ConfigError(f"no migrations found in {MIGRATIONS_DIR}; reinstall supportbot")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest). Safe to run repeatedly.

    On PostgreSQL an advisory lock makes concurrent starters migrate one at a time.
    """
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


class Database:
    """An engine and its session factory.

    Args:
        engine: from ``make_engine`` (or any SQLAlchemy engine, e.g. in tests).

    Example:
        >>> db = Database.from_settings(settings)
        >>> with db.session() as session:  # commits on success, rolls back on error
        ...     session.add(row)
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> Database:
        """Open the database ``settings`` select, migrating it to head unless told not to."""
        db = cls(make_engine(settings))
        if migrate:
            db.upgrade()
        return db

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits when the block ends, rolls back if it raises."""
        with self._sessions.begin() as session:
            yield session

    def upgrade(self) -> None:
        """Migrate to head (see ``upgrade``)."""
        upgrade(self.engine)

    def ping(self) -> bool:
        """True when the database answers and is migrated to head (for readiness checks)."""
        try:
            return current_revision(self.engine) == head_revision()
        except DBAPIError:
            return False

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
