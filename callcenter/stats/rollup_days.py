"""One local day of the rollups: computed from the calls table (reads only), then written.

Apart so that a refresh can read in one transaction and write in another (see
``rollup._refresh_sqlite``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from callcenter.localtime import day_key, local_hour, utc_bounds
from callcenter.models import Call, Classification, Outcome
from callcenter.stats.figures import ANSWER_THRESHOLDS, histogram_figures
from callcenter.stats.models import (
    DailyAnswer,
    DailyDetail,
    DailyPrankCaller,
    DailyTimes,
    DailyWait,
    HourlyCount,
    MonthlyAnswer,
    MonthlyDetail,
    MonthlyPrankCaller,
    MonthlyWait,
)

HOURLY_COLUMNS = ("total", *(c.value for c in Classification), "unclassified")
# The daily detail rows' key and sums (stats_daily), summed per month in stats_monthly.
DETAIL_KEY = ("outcome", "classification", "reason", "operator")
DETAIL_SUMS = ("calls", "talk_count", "talk_sum", "overflowed")
# The daily histograms (model, its seconds column) and the monthly ones that sum them.
HISTOGRAMS: tuple[
    tuple[type[DailyWait] | type[DailyAnswer], type[MonthlyWait] | type[MonthlyAnswer], str], ...
] = (
    (DailyWait, MonthlyWait, "wait_seconds"),
    (DailyAnswer, MonthlyAnswer, "answer_seconds"),
)


def hour_number(session: Session) -> ColumnElement[int]:
    """Hours since the epoch of calls.started_at, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        epoch = func.extract("epoch", Call.started_at)
        return cast(func.floor(epoch / literal_column("3600")), BigInteger)
    return cast(func.strftime("%s", Call.started_at), Integer) // literal_column("3600")


def hour_start(hour_number: int) -> datetime:
    return datetime.fromtimestamp(hour_number * 3600, UTC)


def _text(column: Any) -> ColumnElement[str]:
    # Inline literals: PostgreSQL must see the same expression in SELECT and GROUP BY.
    return func.coalesce(type_coerce(column, String), literal_column("''"))


@dataclass(slots=True)
class DayFigures:
    """One local day's rollups as computed from the calls table, before they are written."""

    key: int
    bounds: tuple[datetime, datetime]  # the day in UTC
    hourly: list[dict[str, Any]]
    detail: list[dict[str, Any]]
    waits: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    # Prank counts per caller, and those stored when they were read (a change moves the month's
    # sums by the difference). None: a build from scratch, which counts them in SQL as it writes.
    pranks: dict[str, int] | None
    stored_pranks: dict[str, int]
    # The day's detail and histogram rows stored when they were read: the month's rows move by
    # the difference (empty on a build from scratch, which sums the months in one pass after).
    stored_detail: list[dict[str, Any]]
    stored_waits: list[dict[str, Any]]
    stored_answers: list[dict[str, Any]]


def rebuild_day(session: Session, day: date, tz: ZoneInfo, *, keep_monthly: bool = True) -> None:
    """Replace the rollups of one local day by a fresh computation from the calls table."""
    write_day(session, read_day(session, day, tz, pranks=keep_monthly))


def read_day(session: Session, day: date, tz: ZoneInfo, *, pranks: bool = True) -> DayFigures:
    """One local day's rollups, computed from the calls table: reads only (no write lock)."""
    key = day_key(day)
    start, end = utc_bounds(day, day, tz)
    in_day = (Call.started_at >= start, Call.started_at < end)
    hour = hour_number(session)
    hourly: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(HOURLY_COLUMNS, 0))
    for number, classification, calls in session.execute(
        select(hour, _text(Call.classification), func.count())
        .where(*in_day)
        .group_by(hour, _text(Call.classification))
    ):
        counts = hourly[local_hour(hour_start(int(number)), tz)]
        counts[classification or "unclassified"] += calls
        counts["total"] += calls

    detail_key = (
        _text(Call.outcome),
        _text(Call.classification),
        _text(Call.classification_reason),
        _text(Call.operator),
    )
    detail = [
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
    answered = (*in_day, Call.outcome == Outcome.answered)
    waits = [
        {"local_day": key, "wait_seconds": wait, "calls": calls}
        for wait, calls in session.execute(
            select(Call.wait_seconds, func.count())
            .where(*answered, Call.wait_seconds.is_not(None))
            .group_by(Call.wait_seconds)
        )
    ]
    answers = [
        {"local_day": key, "answer_seconds": seconds, "calls": calls}
        for seconds, calls in session.execute(
            select(Call.answer_seconds, func.count())
            .where(*answered, Call.answer_seconds.is_not(None))
            .group_by(Call.answer_seconds)
        )
    ]
    figures = DayFigures(
        key=key,
        bounds=(start, end),
        hourly=[{"local_hour": h, **c} for h, c in hourly.items()],
        detail=detail,
        waits=waits,
        answers=answers,
        pranks=None,
        stored_pranks={},
        stored_detail=[],
        stored_waits=[],
        stored_answers=[],
    )
    if pranks:
        figures.stored_detail = [
            dict(row._mapping)
            for row in session.execute(
                select(*(getattr(DailyDetail, c) for c in DETAIL_KEY + DETAIL_SUMS)).where(
                    DailyDetail.local_day == key
                )
            )
        ]
        figures.stored_waits, figures.stored_answers = (
            [
                dict(row._mapping)
                for row in session.execute(
                    select(getattr(daily, seconds), daily.calls).where(daily.local_day == key)
                )
            ]
            for daily, _, seconds in HISTOGRAMS
        )
        figures.stored_pranks = dict(
            session.execute(
                select(DailyPrankCaller.caller_e164, DailyPrankCaller.pranks).where(
                    DailyPrankCaller.local_day == key
                )
            ).all()
        )
        figures.pranks = dict(
            session.execute(
                select(func.coalesce(Call.caller_e164, ""), func.count())
                .where(*_pranks_in(figures.bounds))
                .group_by(Call.caller_e164)
            ).all()
        )
    return figures


def _pranks_in(bounds: tuple[datetime, datetime]) -> tuple[ColumnElement[bool], ...]:
    return (
        Call.started_at >= bounds[0],
        Call.started_at < bounds[1],
        Call.classification == Classification.prank,
        Call.caller_e164.is_not(None),
    )


def write_day(session: Session, figures: DayFigures) -> None:
    """Replace one local day's rollups by ``figures``."""
    key = figures.key
    session.execute(
        delete(HourlyCount).where(HourlyCount.local_hour.between(key * 100, key * 100 + 99))
    )
    for model in (DailyDetail, DailyWait, DailyAnswer, DailyTimes):
        session.execute(delete(model).where(model.local_day == key))
    _insert(session, HourlyCount, figures.hourly)
    _insert(session, DailyDetail, figures.detail)
    _insert(session, DailyWait, figures.waits)
    _insert(session, DailyAnswer, figures.answers)
    if figures.detail:  # a day with calls (as the migration that filled the table did)
        _insert(session, DailyTimes, [day_times(figures)])
    if figures.pranks is not None:  # not a build from scratch: keep the month's rows in step
        month = key // 100
        _move_month(
            session, MonthlyDetail, DETAIL_KEY, DETAIL_SUMS,
            month, figures.stored_detail, figures.detail,
        )  # fmt: skip
        for (_, monthly, seconds), old, new in zip(
            HISTOGRAMS,
            (figures.stored_waits, figures.stored_answers),
            (figures.waits, figures.answers),
            strict=True,
        ):
            _move_month(session, monthly, (seconds,), ("calls",), month, old, new)
    _write_prank_callers(session, figures)


# The outcomes that stats_times_daily counts apart (beside every call and the overflowed).
TIMES_OUTCOMES = ("answered", "abandoned_in_ivr", "abandoned_in_queue", "unanswered")


def day_times(figures: DayFigures) -> dict[str, Any]:
    """One day's row of ``stats_times_daily``, from its detail and histogram rows."""
    detail = figures.detail
    row: dict[str, Any] = {
        "local_day": figures.key,
        "calls": sum(r["calls"] for r in detail),
        "overflowed": sum(r["overflowed"] for r in detail),
        **{o: sum(r["calls"] for r in detail if r["outcome"] == o) for o in TIMES_OUTCOMES},
    }
    for prefix, rows in (("wait", figures.waits), ("answer", figures.answers)):
        seconds = f"{prefix}_seconds"
        found = histogram_figures({r[seconds]: r["calls"] for r in rows})
        row |= {
            f"{prefix}_count": found.count,
            f"{prefix}_p50": found.p50,
            f"{prefix}_p90": found.p90,
            f"{prefix}_p95": found.p95,
            f"{prefix}_max": found.max,
            **{
                f"{prefix}_within_{threshold}": n
                for threshold, n in zip(ANSWER_THRESHOLDS, found.within, strict=True)
            },
        }
    return row


def _move_month(
    session: Session,
    model: type[MonthlyDetail] | type[MonthlyWait] | type[MonthlyAnswer],
    key: tuple[str, ...],
    sums: tuple[str, ...],
    month: int,
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
) -> None:
    """Add a rebuilt day's differences (new rows minus old) to its month's rows of ``model``
    (``key`` beside the month, ``sums`` added; the first sum counts calls)."""
    deltas: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(sums))
    for rows, sign in ((old, -1), (new, 1)):
        for row in rows:
            moved = deltas[tuple(row[c] for c in key)]
            for n, column in enumerate(sums):
                moved[n] += sign * int(row[column])
    changed = [
        {"month": month, **dict(zip(key, k, strict=True)), **dict(zip(sums, v, strict=True))}
        for k, v in deltas.items()
        if any(v)
    ]
    if not changed:
        return
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    upsert = dialect_insert(model)
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=[model.month, *(getattr(model, c) for c in key)],
            set_={c: getattr(model, c) + upsert.excluded[c] for c in sums},
        ),
        changed,
    )
    session.execute(delete(model).where(model.month == month, getattr(model, sums[0]) <= 0))


def _write_prank_callers(session: Session, figures: DayFigures) -> None:
    """Replace one day's prank counts per caller; move the month's sums by the difference."""
    key = figures.key
    if figures.pranks is None:
        # A build from scratch: straight from calls to the table, no round trip.
        session.execute(delete(DailyPrankCaller).where(DailyPrankCaller.local_day == key))
        session.execute(
            insert(DailyPrankCaller).from_select(
                ["local_day", "caller_e164", "pranks"],
                select(literal_column(str(key)), Call.caller_e164, func.count())
                .where(*_pranks_in(figures.bounds))
                .group_by(Call.caller_e164),
            )
        )
        return
    old, new = figures.stored_pranks, figures.pranks
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


def _insert(session: Session, model: type[Any], rows: Iterable[dict[str, Any]]) -> None:
    batch = list(rows)
    if batch:
        session.execute(insert(model), batch)
