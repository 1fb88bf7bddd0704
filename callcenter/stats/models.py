"""Rollups of the calls table for statistics, rebuilt per local day from the calls themselves.

Days are local (settings.timezone) and written as integers: 20250531 for a day, 2025053123 for
its last hour, so a range of dates is a range of integers and months are ``day // 100``.
Empty classification / reason / operator are stored as "" so they can be part of a key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.db import UTCDateTime
from callcenter.models import Base, Call


class HourlyCount(Base):
    """Calls per local hour, by classification: the time series (one row per hour)."""

    __tablename__ = "stats_hourly"

    local_hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    total: Mapped[int] = mapped_column(Integer)
    emergency: Mapped[int] = mapped_column(Integer)
    prank: Mapped[int] = mapped_column(Integer)
    non_emergency: Mapped[int] = mapped_column(Integer)
    unclassified: Mapped[int] = mapped_column(Integer)


class DailyDetail(Base):
    """Calls per local day and (outcome, classification, reason, operator), with sums."""

    __tablename__ = "stats_daily"

    local_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    classification: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator: Mapped[str] = mapped_column(String(128), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    talk_count: Mapped[int] = mapped_column(Integer)
    talk_sum: Mapped[int] = mapped_column(BigInteger)
    # Calls whose queue round timed out at least once (Emergency112Overflow).
    overflowed: Mapped[int] = mapped_column(Integer, default=0)


class MonthlyDetail(Base):
    """``DailyDetail`` summed per local month (YYYYMM), kept by each day's differences: a range
    of whole months reads some 150 rows a month instead of 30 days of them."""

    __tablename__ = "stats_monthly"

    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    classification: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator: Mapped[str] = mapped_column(String(128), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    talk_count: Mapped[int] = mapped_column(Integer)
    talk_sum: Mapped[int] = mapped_column(BigInteger)
    overflowed: Mapped[int] = mapped_column(Integer, default=0)


class DailyWait(Base):
    """Answered calls per local day and whole seconds waited: percentiles merge exactly."""

    __tablename__ = "stats_wait_daily"

    local_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    wait_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class DailyAnswer(Base):
    """Answered calls per local day and whole seconds from reaching the PBX to the answer."""

    __tablename__ = "stats_answer_daily"

    local_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    answer_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class MonthlyWait(Base):
    """``DailyWait`` summed per local month (YYYYMM), kept by each rebuilt day's differences:
    a range of whole months merges some 100 rows a month instead of 30 days of them."""

    __tablename__ = "stats_wait_monthly"

    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    wait_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class MonthlyAnswer(Base):
    """``DailyAnswer`` summed per local month (YYYYMM), kept like ``MonthlyWait``."""

    __tablename__ = "stats_answer_monthly"

    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    answer_seconds: Mapped[int] = mapped_column(Integer, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)


class DailyTimes(Base):
    """One local day's answer-time figures, computed from its detail rows and two histograms
    when the day is written: a range's per-day series reads one row a day instead of some 100
    detail rows and 80 histogram rows.

    Shares are kept as counts (``answer_within_15`` calls of ``answer_count``): the fractions
    are then those computed from the histograms, to the last digit.
    """

    __tablename__ = "stats_times_daily"

    local_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Calls by outcome (``calls`` counts every outcome), and those that overflowed.
    calls: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    abandoned_in_ivr: Mapped[int] = mapped_column(Integer)
    abandoned_in_queue: Mapped[int] = mapped_column(Integer)
    unanswered: Mapped[int] = mapped_column(Integer)
    overflowed: Mapped[int] = mapped_column(Integer)
    answer_count: Mapped[int] = mapped_column(Integer)
    answer_p50: Mapped[int | None] = mapped_column(Integer)
    answer_p90: Mapped[int | None] = mapped_column(Integer)
    answer_p95: Mapped[int | None] = mapped_column(Integer)
    answer_max: Mapped[int | None] = mapped_column(Integer)
    answer_within_10: Mapped[int] = mapped_column(Integer)
    answer_within_15: Mapped[int] = mapped_column(Integer)
    answer_within_20: Mapped[int] = mapped_column(Integer)
    wait_count: Mapped[int] = mapped_column(Integer)
    wait_p50: Mapped[int | None] = mapped_column(Integer)
    wait_p90: Mapped[int | None] = mapped_column(Integer)
    wait_p95: Mapped[int | None] = mapped_column(Integer)
    wait_max: Mapped[int | None] = mapped_column(Integer)
    wait_within_10: Mapped[int] = mapped_column(Integer)
    wait_within_15: Mapped[int] = mapped_column(Integer)
    wait_within_20: Mapped[int] = mapped_column(Integer)


class DailyPrankCaller(Base):
    """Prank calls per local day and caller number (E.164 only: withheld callers are apart)."""

    __tablename__ = "stats_prank_callers_daily"
    __table_args__ = (
        # Top of one day's list, and one caller's days (see stats/top_callers.py).
        Index("ix_stats_prank_callers_daily_top", "local_day", "pranks"),
        Index("ix_stats_prank_callers_daily_caller", "caller_e164", "local_day"),
    )

    local_day: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_e164: Mapped[str] = mapped_column(String(32), primary_key=True)
    pranks: Mapped[int] = mapped_column(Integer)


class MonthlyPrankCaller(Base):
    """Prank calls per local month (YYYYMM) and caller: the daily rows summed, kept by deltas."""

    __tablename__ = "stats_prank_callers_monthly"
    __table_args__ = (
        Index("ix_stats_prank_callers_monthly_top", "month", "pranks"),
        Index("ix_stats_prank_callers_monthly_caller", "caller_e164", "month"),
    )

    month: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_e164: Mapped[str] = mapped_column(String(32), primary_key=True)
    pranks: Mapped[int] = mapped_column(Integer)


class RollupState(Base):
    """Where the rollups stand: the calls.updated_at watermark and what was seen near it."""

    __tablename__ = "stats_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64))
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # count:sum(id):sum(version) of calls changed in the safety window before the watermark.
    fingerprint: Mapped[str] = mapped_column(String(128), default="")


# The rollup refresh finds changed calls by updated_at; the index lives with its only user.
Index("ix_calls_updated_at", Call.updated_at)
