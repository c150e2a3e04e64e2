"""Alembic migrations for the store; run them with ``app.store.upgrade(engine)``."""
