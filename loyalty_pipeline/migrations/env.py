"""Alembic environment. `loyalty init-db` passes its own connection (holding the migration lock);
plain `alembic -c alembic.ini ...` from a checkout connects to LOYALTY_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from loyalty_pipeline.config import Settings
from loyalty_pipeline.db import MIGRATION_LOCK_KEY, make_engine

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":  # plain `alembic upgrade` serialises like init-db
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the revisions run per-dialect statements on a connection")
if connection is not None:
    _run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()
