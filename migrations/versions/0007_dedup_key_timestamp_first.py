"""call_events.dedup_key starts with the event's Timestamp, so the unique index grows at its end

The key was the frame's hash alone: every insert landed on a random page of the unique index,
and SQLite's commit writes every page a transaction touched (three times slower once the table
held 600,000 events). Rows stored before this keep being recognised: their key becomes the
Timestamp found in their text, ":" and their old key, exactly what the listener now computes
(``Frame.dedup_key``), so an event replayed after the upgrade is still stored once.

Revision ID: 0007_dedup_key_timestamp_first
Revises: 0006_call_events_no_fk
Create Date: 2026-11-29 05:40:00
"""

import re
from collections.abc import Callable, Sequence
from functools import partial

import sqlalchemy as sa
from alembic import op

from callcenter.db.backfill import in_committed_chunks

revision: str = "0007_dedup_key_timestamp_first"
down_revision: str | None = "0006_call_events_no_fk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 5000
_STAMP_MAX = 24  # as callcenter.ami.frames.STAMP_MAX when this was written
# The first Timestamp line, as Frame.get reads it: the key, a colon, one optional space.
_STAMP = re.compile(r"(?:^|\r\n)Timestamp: ?([^\r\n]*)")


def upgrade() -> None:
    # Chunk by chunk, each committed (callcenter/db/backfill.py): the listener's inserts wait
    # for no lock the rewrite holds. Running it again skips the keys already rewritten.
    in_committed_chunks(partial(_rekey_chunk, _with_stamp))


def downgrade() -> None:
    _rekey(lambda key, _raw: key.rpartition(":")[2])


def _with_stamp(key: str, raw: str) -> str:
    if ":" in key:  # already keyed with its stamp
        return key
    found = _STAMP.search(raw)
    stamp = found.group(1) if found else ""
    return f"{stamp}:{key}" if stamp and len(stamp) <= _STAMP_MAX else key


def _rekey(new_key: Callable[[str, str], str]) -> None:
    """Rewrite each changed key, a chunk of rows at a time, in id order."""
    connection = op.get_bind()
    last: int | None = 0
    while last is not None:
        last = _rekey_chunk(new_key, connection, last)


def _rekey_chunk(
    new_key: Callable[[str, str], str], connection: sa.Connection, last: int
) -> int | None:
    """Rewrite the changed keys among the next chunk of rows after id ``last``; the chunk's last
    id, or None when none was left."""
    rows = connection.execute(
        sa.text(
            "SELECT id, dedup_key, raw FROM call_events WHERE id > :last "
            f"ORDER BY id LIMIT {_CHUNK}"
        ),
        {"last": last},
    ).all()
    if not rows:
        return None
    changed = [
        {"id": row_id, "key": key} for row_id, old, raw in rows if (key := new_key(old, raw)) != old
    ]
    if changed:
        connection.execute(
            sa.text("UPDATE call_events SET dedup_key = :key WHERE id = :id"), changed
        )
    last_id: int = rows[-1][0]
    return last_id
