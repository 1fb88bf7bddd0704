"""Alembic environment; `callcenter migrate` (callcenter/migrate.py) builds its config."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, String

import callcenter.all_models  # noqa: F401  (registers every table on Base.metadata)
from callcenter.db import make_engine
from callcenter.models import Base

config = context.config
target_metadata = Base.metadata


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
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=compare_type,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
