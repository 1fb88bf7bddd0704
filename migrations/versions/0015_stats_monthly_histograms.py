"""stats_wait_monthly, stats_answer_monthly, stats_times_daily: a year's answer times without
reading its 28,000 daily histogram rows

The monthly histograms sum the daily ones (as stats_monthly sums stats_daily): a range merges
its whole months from them. stats_times_daily holds each day's calls by outcome and its
percentiles and counts within 10/15/20 s, computed from its detail rows and two histograms: a
range's per-day series reads one row a day.
Filled here from the daily rollups (which the refresh keeps equal to the calls), so no rebuild
of the calls is needed; from then on each refresh writes them with the days it rebuilds, in
the same transaction. The fill reads rollup tables only (a year of 1M calls is some 70,000
rows: a few seconds), so it runs in the migration's transaction, a few months at a time; the
new tables are the only ones it writes or locks beyond a read.

Revision ID: 0015_stats_monthly_histograms
Revises: 0014_stats_monthly
Create Date: 2026-12-01 22:20:00
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from callcenter.stats.figures import ANSWER_THRESHOLDS, histogram_figures

revision: str = "0015_stats_monthly_histograms"
down_revision: str | None = "0014_stats_monthly"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("wait", "answer")
OUTCOMES = ("answered", "abandoned_in_ivr", "abandoned_in_queue", "unanswered")
COUNTS = ("calls", *OUTCOMES, "overflowed")
FIGURES = ("count", "p50", "p90", "p95", "max")
MONTHS_PER_CHUNK = 3


def upgrade() -> None:
    for kind in KINDS:
        op.create_table(
            f"stats_{kind}_monthly",
            sa.Column("month", sa.Integer(), nullable=False),
            sa.Column(f"{kind}_seconds", sa.Integer(), nullable=False),
            sa.Column("calls", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint(
                "month", f"{kind}_seconds", name=op.f(f"pk_stats_{kind}_monthly")
            ),
        )
        # local_day is YYYYMMDD: an integer division by 100 gives the month on both databases.
        op.execute(
            f"INSERT INTO stats_{kind}_monthly (month, {kind}_seconds, calls) "
            f"SELECT local_day / 100, {kind}_seconds, SUM(calls) FROM stats_{kind}_daily "
            f"GROUP BY local_day / 100, {kind}_seconds"
        )
    columns = [
        sa.Column("local_day", sa.Integer(), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in COUNTS),
    ]
    for kind in KINDS:
        columns += [
            sa.Column(f"{kind}_count", sa.Integer(), nullable=False),
            *(sa.Column(f"{kind}_{p}", sa.Integer(), nullable=True) for p in FIGURES[1:]),
            *(
                sa.Column(f"{kind}_within_{t}", sa.Integer(), nullable=False)
                for t in ANSWER_THRESHOLDS
            ),
        ]
    times = op.create_table(
        "stats_times_daily",
        *columns,
        sa.PrimaryKeyConstraint("local_day", name=op.f("pk_stats_times_daily")),
    )
    _fill_times(op.get_bind(), times)


def _fill_times(connection: sa.Connection, times: sa.Table) -> None:
    """One row per local day with calls, a few months of days at a time."""
    months = [
        m
        for (m,) in connection.execute(
            sa.text("SELECT DISTINCT local_day / 100 FROM stats_daily ORDER BY 1")
        )
    ]
    for start in range(0, len(months), MONTHS_PER_CHUNK):
        chunk = months[start : start + MONTHS_PER_CHUNK]
        lo, hi = chunk[0] * 100, chunk[-1] * 100 + 99
        span = {"lo": lo, "hi": hi}
        histograms: dict[str, dict[int, dict[int, int]]] = {}
        for kind in KINDS:
            per_day: dict[int, dict[int, int]] = defaultdict(dict)
            for day, seconds, calls in connection.execute(
                sa.text(
                    f"SELECT local_day, {kind}_seconds, calls FROM stats_{kind}_daily "
                    "WHERE local_day BETWEEN :lo AND :hi"
                ),
                span,
            ):
                per_day[day][seconds] = calls
            histograms[kind] = per_day
        rows = []
        by_outcome = ", ".join(
            f"SUM(CASE WHEN outcome = '{o}' THEN calls ELSE 0 END)" for o in OUTCOMES
        )
        for day, *counts in connection.execute(
            sa.text(
                f"SELECT local_day, SUM(calls), {by_outcome}, SUM(overflowed) FROM stats_daily "
                "WHERE local_day BETWEEN :lo AND :hi GROUP BY local_day"
            ),
            span,
        ):
            row: dict[str, Any] = {"local_day": day, **dict(zip(COUNTS, counts, strict=True))}
            for kind in KINDS:
                found = histogram_figures(histograms[kind].get(day, {}))
                row |= {
                    f"{kind}_count": found.count,
                    f"{kind}_p50": found.p50,
                    f"{kind}_p90": found.p90,
                    f"{kind}_p95": found.p95,
                    f"{kind}_max": found.max,
                    **{
                        f"{kind}_within_{t}": n
                        for t, n in zip(ANSWER_THRESHOLDS, found.within, strict=True)
                    },
                }
            rows.append(row)
        if rows:
            connection.execute(sa.insert(times), rows)


def downgrade() -> None:
    op.drop_table("stats_times_daily")
    for kind in KINDS:
        op.drop_table(f"stats_{kind}_monthly")
