"""call_events.call_id is no longer a foreign key: its check was a quarter of PostgreSQL's work
for each stored event

PostgreSQL checks a foreign key row by row, with a SELECT ... FOR KEY SHARE on calls for every
event: measured with COPY of the benchmark's events, 5.5-6 µs of a 15 µs insert. The check
guarded nothing the writer does not already guarantee: the listener is the only writer of
call_events and takes each call_id from the calls row it inserted or read in the same
transaction, and no code deletes a call. tests/ami/test_store_callers.py and the trace replays
check that every stored event's call_id names a call. The index on call_id stays: a call's
events are read by it.

Revision ID: 0006_call_events_no_fk
Revises: 0005_call_events_raw
Create Date: 2026-11-29 05:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_call_events_no_fk"
down_revision: str | None = "0005_call_events_raw"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.drop_constraint("fk_call_events_call_id_calls", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("call_events") as batch_op:
        batch_op.create_foreign_key("fk_call_events_call_id_calls", "calls", ["call_id"], ["id"])
