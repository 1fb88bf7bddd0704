"""Backfills in committed chunks, for migrations that fill a big table (issue 18, item 8).

A migration's DDL holds its table's ACCESS EXCLUSIVE lock (PostgreSQL) until the migration's
transaction commits: a backfill inside that transaction would block the listener's inserts and
the API's reads of the table for as long as it runs (minutes on a year of call events). So a
migration commits its quick DDL first (a nullable column), then fills the table here, a chunk
at a time, each chunk a transaction of its own on a connection of its own, and takes its
constraint step afterwards, in its next transaction. Each fill must be safe to run again: a
migration stopped half way is applied again from its start.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op
from sqlalchemy import Connection

# Set by migrations/env.py when the migrations may commit on their own (not when a caller, such
# as a test walking a downgrade, runs them in a transaction of its own).
MAY_COMMIT = "callcenter_may_commit"

# fill(connection, after_id) -> the last id it filled, or None when nothing was left.
Fill = Callable[[Connection, int], int | None]


def in_committed_chunks(fill: Fill) -> None:
    """Calls ``fill`` until it returns None, each call in a transaction that commits."""
    context = op.get_context()
    if context.config is None or not context.config.attributes.get(MAY_COMMIT):
        _run(fill, op.get_bind())
        return
    engine = op.get_bind().engine
    with context.autocommit_block():  # commits the migration's DDL first
        last: int | None = 0
        while last is not None:
            with engine.begin() as connection:
                last = fill(connection, last)


def _run(fill: Fill, connection: Connection) -> None:
    last: int | None = 0
    while last is not None:
        last = fill(connection, last)
