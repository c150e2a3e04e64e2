"""Alembic environment: runs on the connection ``app.store.database.upgrade`` hands it.

To add a migration: change ``app/store/models.py``, then write a new file in ``versions/``
(``alembic.command.revision(alembic_config(), "message", autogenerate=True)`` drafts one when
given a connection in ``config.attributes["connection"]``), and review it by hand.
"""

from __future__ import annotations

from alembic import context

from app.errors import ConfigError
from app.store.models import Base

config = context.config
version_table = config.attributes.get("version_table", "supportbot_alembic_version")

if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata,
        version_table=version_table, literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise ConfigError(
            "run supportbot migrations through app.store.upgrade(engine), which passes the "
            "database connection; there is no alembic.ini"
        )
    context.configure(
        connection=connection, target_metadata=Base.metadata, version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
