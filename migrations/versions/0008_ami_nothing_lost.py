"""Uniqueid columns sized as Asterisk sends them; a quarantine table; event keys without Timestamp

- ``calls.uniqueid``/``linkedid`` and ``call_events.uniqueid``/``linkedid`` take 150 characters
  (Asterisk's AST_MAX_UNIQUEID): a longer one made PostgreSQL refuse a whole batch. SQLite does
  not enforce a VARCHAR's length, so only PostgreSQL is altered (a catalog change there).
- ``ami_quarantine`` keeps what the database refuses even alone (callcenter/ami/isolate.py).
- ``call_events.dedup_key`` no longer depends on the ``Timestamp`` header, which a replay may or
  may not carry: the event's Uniqueid, ":", a digest of its text without the Timestamp line,
  and "#n" for the nth event of the same text (``Frame.dedup_key`` with
  ``callcenter.ami.identity``). Rows stored before are rekeyed here, in id order, so an event
  replayed after the upgrade is still stored once. A row whose text had NUL (stored as the text
  \\x00) cannot be rekeyed exactly; such an event replayed would be stored again.

Revision ID: 0008_ami_nothing_lost
Revises: 0009_login_failures
Create Date: 2026-12-01 16:20:00
"""

import hashlib
import re
from collections.abc import Callable, Sequence
from functools import partial

import sqlalchemy as sa
from alembic import op

from callcenter.db.backfill import in_committed_chunks

revision: str = "0008_ami_nothing_lost"
down_revision: str | None = "0009_login_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 5000
_PREFIX_MAX = 24  # as callcenter.ami.frames.KEY_PREFIX_MAX when this was written
_STAMP_MAX = 24  # as in 0007
_UNIQUEID = re.compile(r"(?:^|\r\n)Uniqueid: ?([^\r\n]*)")
_STAMP = re.compile(r"(?:^|\r\n)Timestamp: ?([^\r\n]*)")
_COLUMNS = (("calls", "uniqueid"), ("calls", "linkedid"), ("call_events", "uniqueid"))
_COLUMNS += (("call_events", "linkedid"),)


def upgrade() -> None:
    # The DDL (quick: a catalog change and a new table) commits before the rekey, which commits
    # chunk by chunk (callcenter/db/backfill.py): the listener waits for no lock meanwhile.
    # Run again after a stop half way, it changes nothing already done and rekeys every row.
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _COLUMNS:
            op.alter_column(table, column, type_=sa.String(150), existing_type=sa.String(64))
    if not sa.inspect(op.get_bind()).has_table("ami_quarantine"):
        op.create_table(
            "ami_quarantine",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("pbx", sa.String(64), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("uniqueid", sa.Text(), nullable=True),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("raw", sa.Text(), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_ami_quarantine")),
        )
    _rekey_in_chunks()


def _rekey_in_chunks() -> None:
    # Keys first moved out of the way (a new key may be an old key of a later row), then set.
    in_committed_chunks(_move_aside_chunk)
    in_committed_chunks(partial(_set_keys_chunk, _numbered(_new_key)))


def downgrade() -> None:
    # Repeats kept since 0008 (the same text twice) stay: numbered as here, not refused.
    _rekey(_numbered(_old_key))
    op.drop_table("ami_quarantine")
    if op.get_bind().dialect.name == "postgresql":
        for table, column in _COLUMNS:
            op.alter_column(table, column, type_=sa.String(64), existing_type=sa.String(150))


def _numbered(key: Callable[[str], str]) -> Callable[[str, str], str]:
    """``key`` of each row in id order, "#n" for the nth row of one pbx with the same key."""
    counts: dict[tuple[str, str], int] = {}

    def numbered(pbx: str, raw: str) -> str:
        base = key(raw)
        count = counts[pbx, base] = counts.get((pbx, base), 0) + 1
        return base if count == 1 else f"{base}#{count}"

    return numbered


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _new_key(raw: str) -> str:
    """callcenter.ami.frames.event_key, as when this was written."""
    found = _UNIQUEID.search(raw)
    uniqueid = found.group(1) if found else ""
    start = raw.find("\r\nTimestamp:")
    if start >= 0:
        end = raw.find("\r\n", start + 2)
        raw = raw[:start] if end < 0 else raw[:start] + raw[end:]
    digest = _digest(raw)
    return f"{uniqueid}:{digest}" if uniqueid and len(uniqueid) <= _PREFIX_MAX else digest


def _old_key(raw: str) -> str:
    """0007's key, from the stored text (exact for frames that came as UTF-8)."""
    found = _STAMP.search(raw)
    stamp = found.group(1) if found else ""
    digest = _digest(raw)
    return f"{stamp}:{digest}" if stamp and len(stamp) <= _STAMP_MAX else digest


def _rekey(new_key: Callable[[str, str], str]) -> None:
    """Every row's key, in this migration's transaction (a downgrade)."""
    connection = op.get_bind()
    for chunk in (_move_aside_chunk, partial(_set_keys_chunk, new_key)):
        last: int | None = 0
        while last is not None:
            last = chunk(connection, last)


def _move_aside_chunk(connection: sa.Connection, last: int) -> int | None:
    """The next chunk of keys after id ``last`` set to "~id", which no event key is."""
    upto = connection.execute(
        sa.text(
            "SELECT max(id) FROM (SELECT id FROM call_events WHERE id > :last "
            f"ORDER BY id LIMIT {_CHUNK}) AS chunk"
        ),
        {"last": last},
    ).scalar()
    if upto is None:
        return None
    connection.execute(
        sa.text(
            "UPDATE call_events SET dedup_key = '~' || CAST(id AS TEXT) "
            "WHERE id > :last AND id <= :upto"
        ),
        {"last": last, "upto": upto},
    )
    moved: int = upto
    return moved


def _set_keys_chunk(
    new_key: Callable[[str, str], str], connection: sa.Connection, last: int
) -> int | None:
    """Each row's key in the next chunk after id ``last``, in id order."""
    rows = connection.execute(
        sa.text(
            f"SELECT id, pbx, raw FROM call_events WHERE id > :last ORDER BY id LIMIT {_CHUNK}"
        ),
        {"last": last},
    ).all()
    if not rows:
        return None
    connection.execute(
        sa.text("UPDATE call_events SET dedup_key = :key WHERE id = :id"),
        [{"id": row_id, "key": new_key(pbx, raw)} for row_id, pbx, raw in rows],
    )
    last_id: int = rows[-1][0]
    return last_id
