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

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from callcenter.localtime import day_key, key_day, local_day, local_hour, utc_bounds
from callcenter.models import Call, Classification, Outcome
from callcenter.stats.models import (
    DailyAnswer,
    DailyDetail,
    DailyPrankCaller,
    DailyWait,
    HourlyCount,
    MonthlyDetail,
    MonthlyPrankCaller,
    RollupState,
)

STATE_ID = 1
HOURLY_COLUMNS = ("total", *(c.value for c in Classification), "unclassified")
DETAIL_KEY = ("outcome", "classification", "reason", "operator")
DETAIL_SUMS = ("calls", "talk_count", "talk_sum", "overflowed")
_LOCK_KEY = 112_0005  # PostgreSQL advisory lock: one refresher at a time


def _hour_number(session: Session) -> ColumnElement[int]:
    """Hours since the epoch of calls.started_at, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        epoch = func.extract("epoch", Call.started_at)
        return cast(func.floor(epoch / literal_column("3600")), BigInteger)
    return cast(func.strftime("%s", Call.started_at), Integer) // literal_column("3600")


def _hour_start(hour_number: int) -> datetime:
    return datetime.fromtimestamp(hour_number * 3600, UTC)


def _text(column: Any) -> ColumnElement[str]:
    # Inline literals: PostgreSQL must see the same expression in SELECT and GROUP BY.
    return func.coalesce(type_coerce(column, String), literal_column("''"))


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    else:
        # Take SQLite's write lock before reading, so two refreshers cannot interleave.
        session.execute(text("UPDATE stats_rollup_state SET id = id WHERE id = :id"), {"id": 0})


def rebuild_day(session: Session, day: date, tz: ZoneInfo, *, keep_monthly: bool = True) -> None:
    """Replace the rollups of one local day by a fresh computation from the calls table."""
    key = day_key(day)
    start, end = utc_bounds(day, day, tz)
    in_day = (Call.started_at >= start, Call.started_at < end)
    old_details = (
        [
            dict(row._mapping)
            for row in session.execute(
                select(*(getattr(DailyDetail, c) for c in DETAIL_KEY + DETAIL_SUMS)).where(
                    DailyDetail.local_day == key
                )
            )
        ]
        if keep_monthly
        else []
    )
    session.execute(
        delete(HourlyCount).where(HourlyCount.local_hour.between(key * 100, key * 100 + 99))
    )
    for model in (DailyDetail, DailyWait, DailyAnswer):
        session.execute(delete(model).where(model.local_day == key))

    hour = _hour_number(session)
    hourly: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(HOURLY_COLUMNS, 0))
    for number, classification, calls in session.execute(
        select(hour, _text(Call.classification), func.count())
        .where(*in_day)
        .group_by(hour, _text(Call.classification))
    ):
        counts = hourly[local_hour(_hour_start(int(number)), tz)]
        counts[classification or "unclassified"] += calls
        counts["total"] += calls
    _insert(session, HourlyCount, ({"local_hour": h, **c} for h, c in hourly.items()))

    detail_key = (
        _text(Call.outcome),
        _text(Call.classification),
        _text(Call.classification_reason),
        _text(Call.operator),
    )
    details = [
        {
            "local_day": key,
            "outcome": outcome,
            "classification": classification,
            "reason": reason,
            "operator": operator,
            "calls": calls,
            "talk_count": talks,
            "talk_sum": int(talk_sum or 0),
            "overflowed": int(overflowed or 0),
        }
        for outcome, classification, reason, operator, calls, talks, talk_sum, overflowed in (
            session.execute(
                select(
                    *detail_key,
                    func.count(),
                    func.count(Call.talk_seconds),
                    func.coalesce(func.sum(Call.talk_seconds), 0),
                    func.count(case((Call.overflows > 0, 1))),
                )
                .where(*in_day)
                .group_by(*detail_key)
            )
        )
    ]
    _insert(session, DailyDetail, details)
    if keep_monthly:
        _move_month(session, key // 100, old_details, details)
    _insert(
        session,
        DailyWait,
        (
            {"local_day": key, "wait_seconds": wait, "calls": calls}
            for wait, calls in session.execute(
                select(Call.wait_seconds, func.count())
                .where(*in_day, Call.outcome == Outcome.answered, Call.wait_seconds.is_not(None))
                .group_by(Call.wait_seconds)
            )
        ),
    )
    _insert(
        session,
        DailyAnswer,
        (
            {"local_day": key, "answer_seconds": seconds, "calls": calls}
            for seconds, calls in session.execute(
                select(Call.answer_seconds, func.count())
                .where(*in_day, Call.outcome == Outcome.answered, Call.answer_seconds.is_not(None))
                .group_by(Call.answer_seconds)
            )
        ),
    )
    _rebuild_prank_callers(session, key, in_day, keep_monthly=keep_monthly)


def _rebuild_prank_callers(
    session: Session, key: int, in_day: tuple[Any, ...], *, keep_monthly: bool
) -> None:
    """Replace one day's prank counts per caller; move the month's sums by the difference."""
    pranks_in_day = (
        *in_day,
        Call.classification == Classification.prank,
        Call.caller_e164.is_not(None),
    )
    if not keep_monthly:
        # A build from scratch: straight from calls to the table, no round trip.
        session.execute(delete(DailyPrankCaller).where(DailyPrankCaller.local_day == key))
        session.execute(
            insert(DailyPrankCaller).from_select(
                ["local_day", "caller_e164", "pranks"],
                select(literal_column(str(key)), Call.caller_e164, func.count())
                .where(*pranks_in_day)
                .group_by(Call.caller_e164),
            )
        )
        return
    old = dict(
        session.execute(
            select(DailyPrankCaller.caller_e164, DailyPrankCaller.pranks).where(
                DailyPrankCaller.local_day == key
            )
        ).all()
    )
    new: dict[str, int] = dict(
        session.execute(
            select(func.coalesce(Call.caller_e164, ""), func.count())
            .where(*pranks_in_day)
            .group_by(Call.caller_e164)
        ).all()
    )
    # Only the callers whose count moved are written: a day holds thousands of callers and a
    # re-tag changes one (rewriting them all was 50 ms at 10M calls).
    gone = [caller for caller in old if caller not in new]
    for start in range(0, len(gone), 500):
        session.execute(
            delete(DailyPrankCaller).where(
                DailyPrankCaller.local_day == key,
                DailyPrankCaller.caller_e164.in_(gone[start : start + 500]),
            )
        )
    if old:
        _upsert(
            session,
            DailyPrankCaller,
            [DailyPrankCaller.local_day, DailyPrankCaller.caller_e164],
            [
                {"local_day": key, "caller_e164": c, "pranks": n}
                for c, n in new.items()
                if old.get(c) != n
            ],
            add=False,
        )
    else:
        _insert(
            session,
            DailyPrankCaller,
            ({"local_day": key, "caller_e164": c, "pranks": n} for c, n in new.items()),
        )
    month = key // 100
    deltas = [
        {"month": month, "caller_e164": caller, "pranks": new.get(caller, 0) - old.get(caller, 0)}
        for caller in old.keys() | new.keys()
        if new.get(caller, 0) != old.get(caller, 0)
    ]
    if not deltas:
        return
    _upsert(
        session,
        MonthlyPrankCaller,
        [MonthlyPrankCaller.month, MonthlyPrankCaller.caller_e164],
        deltas,
        add=True,
    )
    session.execute(
        delete(MonthlyPrankCaller).where(
            MonthlyPrankCaller.month == month, MonthlyPrankCaller.pranks <= 0
        )
    )


def _move_month(
    session: Session, month: int, old: list[dict[str, Any]], new: list[dict[str, Any]]
) -> None:
    """Add a rebuilt day's differences (new rows minus old) to its month's detail rows."""
    deltas: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(DETAIL_SUMS))
    for rows, sign in ((old, -1), (new, 1)):
        for row in rows:
            sums = deltas[tuple(row[c] for c in DETAIL_KEY)]
            for n, column in enumerate(DETAIL_SUMS):
                sums[n] += sign * int(row[column])
    changed = [
        {
            "month": month,
            **dict(zip(DETAIL_KEY, k, strict=True)),
            **dict(zip(DETAIL_SUMS, v, strict=True)),
        }
        for k, v in deltas.items()
        if any(v)
    ]
    if not changed:
        return
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    upsert = dialect_insert(MonthlyDetail)
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[MonthlyDetail.month, *(getattr(MonthlyDetail, c) for c in DETAIL_KEY)],
            set_={c: getattr(MonthlyDetail, c) + upsert.excluded[c] for c in DETAIL_SUMS},
        ),
        changed,
    )
    session.execute(
        delete(MonthlyDetail).where(MonthlyDetail.month == month, MonthlyDetail.calls <= 0)
    )


def _rebuild_monthly_detail(session: Session) -> None:
    """Every month's detail rows from the daily rows (after a full rebuild)."""
    session.execute(delete(MonthlyDetail))
    month = DailyDetail.local_day // literal_column("100")
    key = [getattr(DailyDetail, c) for c in DETAIL_KEY]
    session.execute(
        insert(MonthlyDetail).from_select(
            ["month", *DETAIL_KEY, *DETAIL_SUMS],
            select(month, *key, *(func.sum(getattr(DailyDetail, c)) for c in DETAIL_SUMS))
            .where(DailyDetail.local_day > 0)
            .group_by(month, *key),
        )
    )


def _upsert(
    session: Session,
    model: type[DailyPrankCaller] | type[MonthlyPrankCaller],
    key: list[Any],
    rows: list[dict[str, Any]],
    *,
    add: bool,
) -> None:
    """Insert rows, or on a key already there set (add=False) or add to (add=True) pranks."""
    if not rows:
        return
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    upsert = dialect_insert(model)
    pranks = model.pranks + upsert.excluded.pranks if add else upsert.excluded.pranks
    session.execute(upsert.on_conflict_do_update(index_elements=key, set_={"pranks": pranks}), rows)


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


def _insert(session: Session, model: type[Any], rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    if batch:
        session.execute(insert(model), batch)


def _days_of_hours(hour_numbers: Iterable[int], tz: ZoneInfo) -> set[int]:
    # Both ends of the hour: with a half-hour offset one UTC hour touches two local days.
    found = set()
    for number in hour_numbers:
        start = _hour_start(number)
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
    """``refresh`` in a transaction of its own that reads one snapshot of the calls table.

    Under READ COMMITTED each statement sees the commits made before it: a call re-tagged
    between the search for changed calls and the fingerprint would be in the fingerprint but
    never rebuilt. PostgreSQL: the refresh lock is taken first (at session level), then a
    REPEATABLE READ transaction begins, so its snapshot also holds the previous refresher's
    work. SQLite: the transaction takes the write lock before reading (see _lock).
    """
    if engine.dialect.name != "postgresql":
        with Session(engine) as session, session.begin():
            return refresh(session, timezone=timezone, safety=safety)
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


def refresh(session: Session, *, timezone: str, safety: timedelta) -> int:
    """Bring the rollups up to date with the calls table; return how many days were rebuilt."""
    tz = ZoneInfo(timezone)
    if _unchanged(session, session.get(RollupState, STATE_ID), timezone, safety):
        return 0
    _lock(session)
    state = session.get(RollupState, STATE_ID, populate_existing=True)
    if _unchanged(session, state, timezone, safety):
        return 0  # another refresher did it while we waited for the lock
    if state is None or state.timezone != timezone:
        # First run, or the reporting time zone changed: every day is rebuilt.
        if state is None:
            state = RollupState(id=STATE_ID, timezone=timezone, watermark=None, fingerprint="")
            session.add(state)
        state.timezone = timezone
        state.watermark = None
        rollups = (HourlyCount, DailyDetail, DailyWait, DailyAnswer, DailyPrankCaller)
        for model in (*rollups, MonthlyPrankCaller, MonthlyDetail):
            session.execute(delete(model))
    since = None if state.watermark is None else state.watermark - safety
    if state.watermark is not None and state.fingerprint == _fingerprint(
        session, since, state.watermark
    ):
        # Nothing arrived late in the safety window: only calls changed since the watermark
        # (the listener keeps changing today's calls: today alone, not every day of the window).
        since = state.watermark

    hour = _hour_number(session)
    query = select(hour, func.max(Call.updated_at)).group_by(hour)
    if since is not None:
        query = query.where(Call.updated_at > since)
    touched = session.execute(query).all()
    days = _days_of_hours((int(number) for number, _ in touched), tz)
    # From scratch, monthly sums are cheaper in one pass than day by day.
    from_scratch = state.watermark is None
    for key in sorted(days):
        rebuild_day(session, key_day(key), tz, keep_monthly=not from_scratch)
    if from_scratch:
        _rebuild_monthly(session)
        _rebuild_monthly_detail(session)
    latest_seen = max((latest for _, latest in touched), default=state.watermark)
    state.watermark = latest_seen
    state.fingerprint = "" if latest_seen is None else _fingerprint(session, latest_seen - safety)
    session.flush()
    return len(days)
