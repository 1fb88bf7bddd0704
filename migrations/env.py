"""Alembic environment; `callcenter migrate` (callcenter/db/migrate.py) builds its config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import callcenter.all_models  # noqa: F401  (registers every table on Base.metadata)
from callcenter.db import make_engine
from callcenter.models import Base

config = context.config
target_metadata = Base.metadata
LOCK_TIMEOUT = config.attributes.get("lock_timeout", "5s")


def run(connection: Connection) -> None:
    # Each migration commits on its own, so its locks end with it (not with the last one), and
    # on PostgreSQL a migration that cannot get a lock soon gives up with an error instead of
    # queueing where every later reader and writer of that table would queue behind it.
    # A caller that began a transaction of its own (a test walking a downgrade) keeps it: then
    # everything runs in it, with the time-out for it alone.
    external = connection.in_transaction()
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
        compare_type=True,
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
