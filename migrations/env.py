"""Alembic environment; `callcenter migrate` (callcenter/db/migrate.py) builds its config."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, String

import callcenter.all_models  # noqa: F401  (registers every table on Base.metadata)
from callcenter.db import make_engine
from callcenter.db.backfill import MAY_COMMIT
from callcenter.models import Base

config = context.config
target_metadata = Base.metadata
LOCK_TIMEOUT = config.attributes.get("lock_timeout", "5s")


def compare_type(
    context: Any, _inspected: Any, _metadata: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """SQLite does not enforce a VARCHAR's length: a longer String in the models is no change
    there (migration 0008 widens columns on PostgreSQL only). Anything else: Alembic decides."""
    if (
        context.dialect.name == "sqlite"
        and isinstance(inspected_type, String)
        and isinstance(metadata_type, String)
        and type(inspected_type.as_generic()) is type(metadata_type.as_generic())
    ):
        return False
    return None


def run(connection: Connection) -> None:
    # Each migration commits on its own, so its locks end with it (not with the last one), and
    # on PostgreSQL a migration that cannot get a lock soon gives up with an error instead of
    # queueing where every later reader and writer of that table would queue behind it.
    # A caller that began a transaction of its own (a test walking a downgrade) keeps it: then
    # everything runs in it, with the time-out for it alone.
    external = connection.in_transaction()
    config.attributes[MAY_COMMIT] = not external  # backfills commit chunk by chunk
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        scope = "LOCAL " if external else ""
        connection.exec_driver_sql(f"SET {scope}lock_timeout = '{LOCK_TIMEOUT}'")
        if not external:
            connection.commit()  # a session setting: it stays for the migrations' transactions
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=compare_type,
        transaction_per_migration=True,
    )
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if postgres and not external:
            connection.rollback()  # a failed migration's transaction, if any
            connection.exec_driver_sql("RESET lock_timeout")
            connection.commit()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
