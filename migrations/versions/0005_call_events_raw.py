"""call_events keep each frame as its text (raw) instead of its headers as JSON; one index less

The listener stores about 20,000 events a second at peak; splitting every event into headers
only to store them as JSON was the largest part of its work. The API still serves the headers,
split from the text when a call's events are read. No query reads events by (pbx, uniqueid)
(a call's events are read by call_id), and that index cost about a sixth of the write rate.

Revision ID: 0005_call_events_raw
Revises: 0004_incidents
Create Date: 2026-11-29 03:20:00
"""

import json
from collections.abc import Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from alembic import op

from callcenter.ami.frames import headers_of
from callcenter.db.backfill import in_committed_chunks

revision: str = "0005_call_events_raw"
down_revision: str | None = "0004_incidents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 5000


def upgrade() -> None:
    # The column is committed on its own; the backfill commits chunk by chunk (see
    # callcenter/db/backfill.py): the listener's inserts and the API's reads wait for neither.
    if "raw" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("call_events")}:
        with op.batch_alter_table("call_events") as batch_op:
            batch_op.add_column(sa.Column("raw", sa.Text(), nullable=True))
    in_committed_chunks(partial(_convert_chunk, "headers", "raw", _headers_to_text))
    # The constraint step, under the table's lock from here: first the rows that arrived during
    # the backfill (an older listener still writing headers), then NOT NULL.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("LOCK TABLE call_events IN ACCESS EXCLUSIVE MODE")
    _convert("headers", "raw", _headers_to_text)
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.alter_column("raw", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("headers")
        batch_op.drop_index("ix_call_events_pbx_uniqueid")


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=True))
        batch_op.create_index("ix_call_events_pbx_uniqueid", ["pbx", "uniqueid"], unique=False)
    _convert("raw", "headers", _text_to_headers)
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.alter_column("headers", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_column("raw")


def _headers_to_text(headers: Any) -> str:
    if isinstance(headers, str):  # SQLite hands JSON back as text
        headers = json.loads(headers)
    return "\r\n".join(f"{key}: {value}" for key, value in headers)


def _text_to_headers(raw: Any) -> str:
    return json.dumps([[key, value] for key, value in headers_of(raw)])


def _convert(source: str, target: str, convert: Any) -> None:
    """Fill ``target`` from ``source`` where it is empty, in this migration's transaction."""
    connection = op.get_bind()
    last: int | None = 0
    while last is not None:
        last = _convert_chunk(source, target, convert, connection, last)


def _convert_chunk(
    source: str, target: str, convert: Any, connection: sa.Connection, last: int
) -> int | None:
    """Fill ``target`` from ``source`` in the next chunk of rows (after id ``last``) where it is
    empty; the chunk's last id, or None when none was left."""
    rows = connection.execute(
        sa.text(
            f"SELECT id, {source} FROM call_events WHERE id > :last AND {target} IS NULL "
            f"ORDER BY id LIMIT {_CHUNK}"
        ),
        {"last": last},
    ).all()
    if not rows:
        return None
    # PostgreSQL takes JSON from text only when told; SQLite keeps JSON as text.
    json_target = target == "headers" and connection.dialect.name == "postgresql"
    cast = "CAST(:value AS JSON)" if json_target else ":value"
    connection.execute(
        sa.text(f"UPDATE call_events SET {target} = {cast} WHERE id = :id"),
        [{"id": row_id, "value": convert(value)} for row_id, value in rows],
    )
    last_id: int = rows[-1][0]
    return last_id
