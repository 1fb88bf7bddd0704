"""Keeps the stats_* rollups equal to the calls table, with no hook in the code that writes calls.

Each refresh looks for calls whose ``updated_at`` passed the stored watermark, and rebuilds
every local day they fall in, straight from the calls table. Calls changed in the safety window
just before the watermark are re-checked through a fingerprint (count, id, version and changes
sums), so a transaction that committed after a refresh but stamped an earlier time is still
counted. When nothing changed, a refresh costs two indexed look-ups. ``refresh_in_snapshot``
runs a refresh from one consistent snapshot (on PostgreSQL, REPEATABLE READ): what it rebuilds
and the fingerprint it stores describe the same calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Engine,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session

from callcenter.localtime import key_day, local_day
from callcenter.models import Call
from callcenter.stats import rollup_days
from callcenter.stats.models import (
    DailyAnswer,
    DailyDetail,
    DailyPrankCaller,
    DailyTimes,
    DailyWait,
    HourlyCount,
    MonthlyDetail,
    MonthlyPrankCaller,
    RollupState,
)
from callcenter.stats.rollup_days import DayFigures, read_day, rebuild_day, write_day

STATE_ID = 1
_LOCK_KEY = 112_0005  # PostgreSQL advisory lock: one refresher at a time


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    else:
        # Take SQLite's write lock: two refreshers cannot interleave their writes.
        session.execute(text("UPDATE stats_rollup_state SET id = id WHERE id = :id"), {"id": 0})


def _rebuild_monthly(session: Session) -> None:
    """All monthly prank sums from the daily rows (after a full rebuild)."""
    session.execute(delete(MonthlyPrankCaller))
    month = DailyPrankCaller.local_day // literal_column("100")
    session.execute(
        insert(MonthlyPrankCaller).from_select(
            ["month", "caller_e164", "pranks"],
            select(month, DailyPrankCaller.caller_e164, func.sum(DailyPrankCaller.pranks))
            .where(DailyPrankCaller.local_day > 0)
            .group_by(month, DailyPrankCaller.caller_e164),
        )
    )


def _rebuild_monthly_detail(session: Session) -> None:
    """Every month's detail rows from the daily rows (after a full rebuild)."""
    session.execute(delete(MonthlyDetail))
    month = DailyDetail.local_day // literal_column("100")
    key = [getattr(DailyDetail, c) for c in rollup_days.DETAIL_KEY]
    session.execute(
        insert(MonthlyDetail).from_select(
            ["month", *rollup_days.DETAIL_KEY, *rollup_days.DETAIL_SUMS],
            select(
                month, *key, *(func.sum(getattr(DailyDetail, c)) for c in rollup_days.DETAIL_SUMS)
            )
            .where(DailyDetail.local_day > 0)
            .group_by(month, *key),
        )
    )


def _rebuild_monthly_histograms(session: Session) -> None:
    """Every month's wait and answer histograms from the daily rows (after a full rebuild)."""
    for daily, monthly, seconds in rollup_days.HISTOGRAMS:
        session.execute(delete(monthly))
        month = daily.local_day // literal_column("100")
        value = getattr(daily, seconds)
        session.execute(
            insert(monthly).from_select(
                ["month", seconds, "calls"],
                select(month, value, func.sum(daily.calls))
                .where(daily.local_day > 0)
                .group_by(month, value),
            )
        )


def _days_of_hours(hour_numbers: Iterable[int], tz: ZoneInfo) -> set[int]:
    # Both ends of the hour: with a half-hour offset one UTC hour touches two local days.
    found = set()
    for number in hour_numbers:
        start = rollup_days.hour_start(number)
        found.add(local_day(start, tz))
        found.add(local_day(start + timedelta(seconds=3599), tz))
    return found


def _fingerprint(session: Session, since: datetime | None, until: datetime | None = None) -> str:
    """What the calls changed since ``since`` look like: any new write changes it.

    A new call changes the count, an operator's tag the version sum, and an AMI listener's
    update the changes sum, whatever time it was stamped with.
    """
    query = select(
        func.count(),
        func.coalesce(func.sum(Call.id), 0),
        func.coalesce(func.sum(Call.version), 0),
        func.coalesce(func.sum(Call.changes), 0),
        func.max(Call.updated_at),
    )
    if since is not None:
        query = query.where(Call.updated_at > since)
    if until is not None:
        query = query.where(Call.updated_at <= until)
    count, ids, versions, changes, latest = session.execute(query).one()
    return f"{count}:{ids}:{versions}:{changes}:{latest.isoformat() if latest else ''}"


def _unchanged(
    session: Session, state: RollupState | None, timezone: str, safety: timedelta
) -> bool:
    if state is None or state.timezone != timezone or state.watermark is None:
        return False
    # Any call changed since (new, or updated again) changes the count or the version sum.
    return state.fingerprint == _fingerprint(session, state.watermark - safety)


def refresh_in_snapshot(engine: Engine, *, timezone: str, safety: timedelta) -> int:
    """``refresh`` from one snapshot of the calls table.

    Under READ COMMITTED each statement sees the commits made before it: a call re-tagged
    between the search for changed calls and the fingerprint would be in the fingerprint but
    never rebuilt. PostgreSQL: the refresh lock is taken first (at session level), then a
    REPEATABLE READ transaction begins, so its snapshot also holds the previous refresher's
    work. SQLite: see _refresh_sqlite.
    """
    if engine.dialect.name != "postgresql":
        return _refresh_sqlite(engine, timezone=timezone, safety=safety)
    key = {"key": _LOCK_KEY}
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
        connection.commit()  # the session-level lock stays; the next transaction is new
        try:
            snapshot = connection.execution_options(isolation_level="REPEATABLE READ")
            with Session(bind=snapshot) as session, session.begin():
                return refresh(session, timezone=timezone, safety=safety)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            connection.commit()


def _refresh_sqlite(engine: Engine, *, timezone: str, safety: timedelta) -> int:
    """SQLite has one writer at a time: an operator's tag must not wait while a refresh reads.

    So the refresh reads in a read transaction (one WAL snapshot, no write lock), and then
    writes what it computed in a short transaction of its own, if no other refresher wrote the
    rollups in between (else it reads again, from a newer snapshot). The rollups then describe
    that snapshot, and the watermark and fingerprint it stores say so: what committed after it
    is found by the next refresh. A build from scratch (rare) runs under the lock throughout.
    """
    tz = ZoneInfo(timezone)
    while True:
        with Session(engine) as session, session.begin():
            # pysqlite begins a transaction only before a write: without this BEGIN each
            # SELECT would read a snapshot of its own.
            session.execute(text("BEGIN"))
            state = session.get(RollupState, STATE_ID)
            if _unchanged(session, state, timezone, safety):
                return 0
            planned = None
            if state is not None and not _from_scratch(state, timezone):
                planned = (_stored(state), _plan(session, state, tz, safety))
        with Session(engine) as session, session.begin():
            if planned is None:
                return refresh(session, timezone=timezone, safety=safety)
            _lock(session)
            state = session.get(RollupState, STATE_ID, populate_existing=True)
            base, plan = planned
            if state is not None and _stored(state) == base:
                _apply(session, state, plan)
                return len(plan.days)


def refresh(session: Session, *, timezone: str, safety: timedelta) -> int:
    """Bring the rollups up to date with the calls table in ``session``'s transaction; return
    how many days were rebuilt."""
    tz = ZoneInfo(timezone)
    if _unchanged(session, session.get(RollupState, STATE_ID), timezone, safety):
        return 0
    _lock(session)
    state = session.get(RollupState, STATE_ID, populate_existing=True)
    if _unchanged(session, state, timezone, safety):
        return 0  # another refresher did it while we waited for the lock
    if state is None or _from_scratch(state, timezone):
        return _rebuild_all(session, state, timezone, safety)
    plan = _plan(session, state, tz, safety)
    _apply(session, state, plan)
    return len(plan.days)


@dataclass(slots=True)
class _Plan:
    """What a refresh writes: the days it rebuilt, and the state that describes them."""

    days: list[DayFigures]
    watermark: datetime | None
    fingerprint: str


def _from_scratch(state: RollupState, timezone: str) -> bool:
    # No watermark: the calls table was empty at the last build.
    return state.timezone != timezone or state.watermark is None


def _stored(state: RollupState) -> tuple[str, datetime | None, str]:
    return state.timezone, state.watermark, state.fingerprint


def _touched(
    session: Session, since: datetime | None, tz: ZoneInfo
) -> tuple[set[int], datetime | None]:
    """The local days of the calls changed after ``since``, and the latest change among them."""
    hour = rollup_days.hour_number(session)
    query = select(hour, func.max(Call.updated_at)).group_by(hour)
    if since is not None:
        query = query.where(Call.updated_at > since)
    touched = session.execute(query).all()
    days = _days_of_hours((int(number) for number, _ in touched), tz)
    return days, max((latest for _, latest in touched), default=None)


def _plan(session: Session, state: RollupState, tz: ZoneInfo, safety: timedelta) -> _Plan:
    """Reads only: the days changed since the stored watermark, computed afresh."""
    assert state.watermark is not None
    since = state.watermark - safety
    if state.fingerprint == _fingerprint(session, since, state.watermark):
        # Nothing arrived late in the safety window: only calls changed since the watermark
        # (the listener keeps changing today's calls: today alone, not every day of the window).
        since = state.watermark
    days, latest = _touched(session, since, tz)
    watermark = state.watermark if latest is None else latest
    return _Plan(
        days=[read_day(session, key_day(key), tz) for key in sorted(days)],
        watermark=watermark,
        fingerprint=_fingerprint(session, watermark - safety),
    )


def _apply(session: Session, state: RollupState, plan: _Plan) -> None:
    for figures in plan.days:
        write_day(session, figures)
    state.watermark = plan.watermark
    state.fingerprint = plan.fingerprint
    session.flush()


def _rebuild_all(
    session: Session, state: RollupState | None, timezone: str, safety: timedelta
) -> int:
    """First run, or the reporting time zone changed: every day is rebuilt."""
    if state is None:
        state = RollupState(id=STATE_ID, timezone=timezone, watermark=None, fingerprint="")
        session.add(state)
    state.timezone = timezone
    rollups = (HourlyCount, DailyDetail, DailyWait, DailyAnswer, DailyTimes, DailyPrankCaller)
    for model in (*rollups, MonthlyPrankCaller, MonthlyDetail):
        session.execute(delete(model))
    tz = ZoneInfo(timezone)
    days, latest = _touched(session, None, tz)
    # Monthly sums are cheaper in one pass than day by day.
    for key in sorted(days):
        rebuild_day(session, key_day(key), tz, keep_monthly=False)
    _rebuild_monthly(session)
    _rebuild_monthly_detail(session)
    _rebuild_monthly_histograms(session)
    state.watermark = latest
    state.fingerprint = "" if latest is None else _fingerprint(session, latest - safety)
    session.flush()
    return len(days)
