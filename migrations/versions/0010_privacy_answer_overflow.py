"""Withheld callers, answer time from the PBX, overflows, and no literal "<unknown>" name

* ``calls.caller_id_private``: the caller asked for privacy (presentation restricted); the
  number is kept. ``ivr_runs.calling_pres``: what AGI said (``agi_callingpres``).
* ``calls.answer_seconds``: from the call reaching the PBX to an operator answering, filled for
  stored answered calls from ``answered_at - started_at``.
* ``calls.overflows``: queue rounds that timed out (the dialplan's Emergency112Overflow).
* ``calls.caller_id_name`` may be NULL; the stored ``<unknown>`` (AMI's word for "no name")
  becomes NULL. The raw value stays in the call's events.
* ``stats_answer_daily`` and ``stats_daily.overflowed``: the statistics rebuild every day on the
  next refresh (the rollup state is cleared).

Revision ID: 0010_privacy_answer_overflow
Revises: 0007_dedup_key_timestamp_first
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_privacy_answer_overflow"
down_revision: str | None = "0007_dedup_key_timestamp_first"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(
            sa.Column("caller_id_private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("answer_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("overflows", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.alter_column("caller_id_name", existing_type=sa.String(length=128), nullable=True)
    with op.batch_alter_table("ivr_runs") as batch_op:
        batch_op.add_column(sa.Column("calling_pres", sa.Integer(), nullable=True))
    with op.batch_alter_table("stats_daily") as batch_op:
        batch_op.add_column(
            sa.Column("overflowed", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "stats_answer_daily",
        sa.Column("local_day", sa.Integer(), nullable=False),
        sa.Column("answer_seconds", sa.Integer(), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("local_day", "answer_seconds", name=op.f("pk_stats_answer_daily")),
    )
    op.execute("UPDATE calls SET caller_id_name = NULL WHERE caller_id_name IN ('<unknown>', '')")
    if op.get_bind().dialect.name == "postgresql":
        seconds = "FLOOR(EXTRACT(EPOCH FROM answered_at - started_at))"
    else:
        seconds = "CAST((julianday(answered_at) - julianday(started_at)) * 86400 AS INTEGER)"
    op.execute(
        f"UPDATE calls SET answer_seconds = {seconds} "
        "WHERE answered_at IS NOT NULL AND answered_at >= started_at"
    )
    # The statistics gain figures: every day is rebuilt on the next refresh.
    op.execute("DELETE FROM stats_rollup_state")


def downgrade() -> None:
    op.execute("DELETE FROM stats_rollup_state")
    op.drop_table("stats_answer_daily")
    with op.batch_alter_table("stats_daily") as batch_op:
        batch_op.drop_column("overflowed")
    with op.batch_alter_table("ivr_runs") as batch_op:
        batch_op.drop_column("calling_pres")
    op.execute("UPDATE calls SET caller_id_name = '' WHERE caller_id_name IS NULL")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.alter_column("caller_id_name", existing_type=sa.String(length=128), nullable=False)
        batch_op.drop_column("overflows")
        batch_op.drop_column("answer_seconds")
        batch_op.drop_column("caller_id_private")
