"""stats_monthly: the daily detail rollup summed per month, for ranges of whole months

Filled here from ``stats_daily`` (which the rollup keeps equal to the calls), so no rebuild of
the calls is needed; from then on the refresh keeps it by each rebuilt day's differences.

Revision ID: 0014_stats_monthly
Revises: 0008_ami_nothing_lost
Create Date: 2026-12-01 19:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_stats_monthly"
down_revision: str | None = "0008_ami_nothing_lost"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_monthly",
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("classification", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=128), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("talk_count", sa.Integer(), nullable=False),
        sa.Column("talk_sum", sa.BigInteger(), nullable=False),
        sa.Column("overflowed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month",
            "outcome",
            "classification",
            "reason",
            "operator",
            name=op.f("pk_stats_monthly"),
        ),
    )
    # local_day is YYYYMMDD: an integer division by 100 gives the month on both databases.
    op.execute(
        "INSERT INTO stats_monthly (month, outcome, classification, reason, operator, calls, "
        "talk_count, talk_sum, overflowed) "
        "SELECT local_day / 100, outcome, classification, reason, operator, SUM(calls), "
        "SUM(talk_count), SUM(talk_sum), SUM(overflowed) FROM stats_daily "
        "GROUP BY local_day / 100, outcome, classification, reason, operator"
    )


def downgrade() -> None:
    op.drop_table("stats_monthly")
