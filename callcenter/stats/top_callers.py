"""Top prank callers over any date range, exactly, without summing every caller's rows.

A threshold algorithm (Fagin et al.): the range is cut into lists (whole months from the
monthly rollup, the other days from the daily one), each read from its top down to a depth.
A caller seen nowhere has at most the sum of the counts at that depth in every list; once the
last of the top callers (whose exact totals are looked up) beats that bound, nobody unseen
can enter the top. Otherwise the depth grows. With prank calls concentrated on few numbers,
as they are, a few dozen rows per list settle it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.localtime import day_key, days
from callcenter.stats.models import DailyPrankCaller, MonthlyPrankCaller

FIRST_DEPTH = 32
FULL_SCAN_DEPTH = 20_000  # past this, sum every row of the range instead
CHUNK = 500


@dataclass(frozen=True)
class Lists:
    months: list[int]  # YYYYMM covered entirely by the range
    days: list[int]  # YYYYMMDD of the range outside those months


def split(first: date, last: date) -> Lists:
    """Whole months and loose days of a range.

    >>> split(date(2025, 5, 30), date(2025, 7, 2))
    Lists(months=[202506], days=[20250530, 20250531, 20250701, 20250702])
    """
    by_month: dict[int, list[int]] = defaultdict(list)
    for day in days(first, last):
        by_month[day.year * 100 + day.month].append(day_key(day))
    months, loose = [], []
    for month, keys in by_month.items():
        year, number = divmod(month, 100)
        following = date(year + number // 12, number % 12 + 1, 1)
        if len(keys) == (following - date(year, number, 1)).days:
            months.append(month)
        else:
            loose += keys
    return Lists(months, loose)


def complete(ranked: Sequence[tuple[str, int]], *, bound: int, limit: int, min_pranks: int) -> bool:
    """Whether no caller with at most ``bound`` pranks could still enter ``ranked``.

    >>> complete([("a", 9), ("b", 5)], bound=4, limit=2, min_pranks=2)
    True
    >>> complete([("a", 9), ("b", 5)], bound=5, limit=2, min_pranks=2)
    False
    >>> complete([("a", 9)], bound=1, limit=2, min_pranks=2)
    True
    """
    if bound < min_pranks:
        return True
    return len(ranked) == limit and bound < ranked[-1][1]


def _top_of_lists(session: Session, lists: Lists, depth: int) -> tuple[set[str], int]:
    seen: set[str] = set()
    bound = 0
    queries = [
        select(MonthlyPrankCaller.caller_e164, MonthlyPrankCaller.pranks)
        .where(MonthlyPrankCaller.month == month)
        .order_by(MonthlyPrankCaller.pranks.desc())
        .limit(depth)
        for month in lists.months
    ] + [
        select(DailyPrankCaller.caller_e164, DailyPrankCaller.pranks)
        .where(DailyPrankCaller.local_day == day)
        .order_by(DailyPrankCaller.pranks.desc())
        .limit(depth)
        for day in lists.days
    ]
    for query in queries:
        rows = session.execute(query).all()
        seen.update(caller for caller, _ in rows)
        if len(rows) == depth:  # a shorter list was read to its end: nobody unseen is in it
            bound += rows[-1][1]
    return seen, bound


def _totals(session: Session, lists: Lists, callers: Sequence[str]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for start in range(0, len(callers), CHUNK):
        chunk = callers[start : start + CHUNK]
        if lists.months:
            for caller, n in session.execute(
                select(MonthlyPrankCaller.caller_e164, func.sum(MonthlyPrankCaller.pranks))
                .where(
                    MonthlyPrankCaller.caller_e164.in_(chunk),
                    MonthlyPrankCaller.month.in_(lists.months),
                )
                .group_by(MonthlyPrankCaller.caller_e164)
            ):
                totals[caller] += int(n)
        if lists.days:
            for caller, n in session.execute(
                select(DailyPrankCaller.caller_e164, func.sum(DailyPrankCaller.pranks))
                .where(
                    DailyPrankCaller.caller_e164.in_(chunk),
                    DailyPrankCaller.local_day.in_(lists.days),
                )
                .group_by(DailyPrankCaller.caller_e164)
            ):
                totals[caller] += int(n)
    return totals


def _rank(totals: dict[str, int], limit: int, min_pranks: int) -> list[tuple[str, int]]:
    ranked = sorted(
        ((c, n) for c, n in totals.items() if n >= min_pranks), key=lambda item: (-item[1], item[0])
    )
    return ranked[:limit]


def _full_scan(session: Session, first: date, last: date) -> dict[str, int]:
    pranks = func.sum(DailyPrankCaller.pranks)
    return {
        caller: int(n)
        for caller, n in session.execute(
            select(DailyPrankCaller.caller_e164, pranks)
            .where(DailyPrankCaller.local_day.between(day_key(first), day_key(last)))
            .group_by(DailyPrankCaller.caller_e164)
        )
    }


def top_prank_callers(
    session: Session, first: date, last: date, *, limit: int, min_pranks: int
) -> list[tuple[str, int]]:
    """The ``limit`` callers with most prank calls (at least ``min_pranks``), most first."""
    lists = split(first, last)
    depth = max(FIRST_DEPTH, 2 * limit)
    while depth < FULL_SCAN_DEPTH:
        seen, bound = _top_of_lists(session, lists, depth)
        ranked = _rank(_totals(session, lists, sorted(seen)), limit, min_pranks)
        if complete(ranked, bound=bound, limit=limit, min_pranks=min_pranks):
            return ranked
        depth *= 4
    return _rank(_full_scan(session, first, last), limit, min_pranks)
