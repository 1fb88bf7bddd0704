"""Answer times read through the monthly histograms and the per-day figures equal those merged
day by day from the daily histograms, those counted call by call, and those of a full rebuild,
for ranges that start and end mid-month and calls on either side of local midnight (WITA)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.localtime import day_key, days
from callcenter.models import Call, Classification, Outcome
from callcenter.settings import Settings
from callcenter.stats import figures, queries, rollup
from callcenter.stats.models import (
    DailyAnswer,
    DailyTimes,
    DailyWait,
    MonthlyAnswer,
    MonthlyWait,
    RollupState,
)
from tests.builders import make_call
from tests.stats import direct

SAFETY = timedelta(minutes=10)
RANGES = [
    (date(2025, 4, 1), date(2025, 7, 31)),  # whole months only
    (date(2025, 4, 15), date(2025, 7, 10)),  # days, whole months, days
    (date(2025, 4, 30), date(2025, 6, 30)),  # one day before whole months
    (date(2025, 5, 1), date(2025, 6, 1)),  # one day after a whole month
    (date(2025, 5, 31), date(2025, 6, 1)),  # the two days around a month's end, no month
    (date(2025, 6, 1), date(2025, 6, 1)),
    (date(2025, 6, 2), date(2025, 6, 30)),  # a month but its first day
]
# Local midnight in WITA (UTC+8) is 16:00 UTC: these fall on either side of a month's end.
EDGES = [
    datetime(2025, 4, 30, 15, 59, 59, tzinfo=UTC),
    datetime(2025, 4, 30, 16, 0, tzinfo=UTC),
    datetime(2025, 5, 31, 15, 59, 59, tzinfo=UTC),
    datetime(2025, 5, 31, 16, 0, tzinfo=UTC),
    datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC),
    datetime(2025, 6, 30, 16, 0, tzinfo=UTC),
]
FIELDS = (
    "answered",
    "total",
    "overflowed",
    "answer_p50",
    "answer_p90",
    "answer_p95",
    "answer_max",
    "within_10s",
    "within_15s",
    "within_20s",
    "wait_p50",
    "wait_p90",
    "wait_p95",
    "wait_max",
)


def _calls(factory: sessionmaker[Session]) -> list[int]:
    rng = random.Random(112)
    start = datetime(2025, 3, 31, 16, 0, tzinfo=UTC)  # 1 April, 00:00 WITA
    moments = EDGES + [start + timedelta(minutes=rng.randrange(122 * 24 * 60)) for _ in range(600)]
    with factory.begin() as session:
        return [
            make_call(
                session,
                started_at=moment,
                outcome=rng.choice([Outcome.answered] * 4 + [Outcome.abandoned_in_queue]),
                wait_seconds=rng.choice([0, 1, 4, 9, 10, 14, 15, 16, 20, 21, 33, 90]),
                classification=rng.choice(list(Classification)),
                caller=f"0812345678{rng.randrange(40):02d}",
            ).id
            for moment in moments
        ]


def _refresh(factory: sessionmaker[Session], settings: Settings) -> None:
    with factory.begin() as session:
        rollup.refresh(session, timezone=settings.timezone, safety=SAFETY)


def _report(factory: sessionmaker[Session], settings: Settings, first: date, last: date) -> Any:
    with factory() as session:
        return queries.answer_times(session, first, last, settings)


def _day_by_day(
    factory: sessionmaker[Session], first: date, last: date
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The figures as they were computed before the monthly rows: each day's two histograms
    from the daily rows, merged in Python for the range."""
    per_day: dict[int, tuple[dict[int, int], dict[int, int]]] = {}
    with factory() as session:
        for d in days(first, last):
            key = day_key(d)
            per_day[key] = (
                dict(
                    session.execute(
                        select(DailyWait.wait_seconds, DailyWait.calls).where(
                            DailyWait.local_day == key
                        )
                    ).all()
                ),
                dict(
                    session.execute(
                        select(DailyAnswer.answer_seconds, DailyAnswer.calls).where(
                            DailyAnswer.local_day == key
                        )
                    ).all()
                ),
            )
    merged: tuple[dict[int, int], dict[int, int]] = ({}, {})
    for histograms in per_day.values():
        for total, histogram in zip(merged, histograms, strict=True):
            for value, n in histogram.items():
                total[value] = total.get(value, 0) + n

    def times(waits: dict[int, int], answers: dict[int, int]) -> dict[str, Any]:
        w, a = figures.wait_figures(waits), figures.wait_figures(answers)
        return {
            "answer_p50": a.wait_p50,
            "answer_p90": a.wait_p90,
            "answer_p95": a.wait_p95,
            "answer_max": a.wait_max,
            "within_10s": a.within_10s,
            "within_15s": a.within_15s,
            "within_20s": a.within_20s,
            "wait_p50": w.wait_p50,
            "wait_p90": w.wait_p90,
            "wait_p95": w.wait_p95,
            "wait_max": w.wait_max,
        }

    return times(*merged), [times(*per_day[day_key(d)]) for d in days(first, last)]


def _assert_equal_day_by_day_and_direct(
    factory: sessionmaker[Session], settings: Settings, first: date, last: date
) -> None:
    report = _report(factory, settings, first, last)
    overall, by_day = _day_by_day(factory, first, last)
    assert {k: getattr(report.overall, k) for k in overall} == overall, (first, last)
    assert [{k: getattr(d, k) for k in overall} for d in report.days] == by_day, (first, last)
    with factory() as session:
        rows = direct.calls(session, first, last, settings.tz)
    expected = direct.answer_times(rows)
    assert {k: getattr(report.overall, k) for k in expected} == expected, (first, last)
    calls_by_day = direct.per_day(rows)
    for day in report.days:
        assert day.date is not None
        expected = direct.answer_times(calls_by_day.get(day_key(day.date), []))
        assert {k: getattr(day, k) for k in expected} == expected, day.date


def _tables(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with factory() as session:
        return {
            model.__tablename__: sorted(
                tuple(row) for row in session.execute(select(*model.__table__.columns))
            )
            for model in (MonthlyWait, MonthlyAnswer, DailyTimes)
        }


def test_monthly_path_equals_the_day_by_day_figures_and_a_full_rebuild(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    ids = _calls(session_factory)
    _refresh(session_factory, settings)  # a build from scratch: months summed in one pass
    with session_factory() as session:
        assert session.scalar(select(MonthlyWait.month).limit(1)) is not None
    for first, last in RANGES:
        _assert_equal_day_by_day_and_direct(session_factory, settings, first, last)

    # Calls change: each rebuilt day moves its month's histograms by its differences.
    rng = random.Random(7)
    with session_factory.begin() as session:
        for call_id in rng.sample(ids[len(EDGES) :], 80) + ids[: len(EDGES)]:
            session.execute(
                update(Call)
                .where(Call.id == call_id)
                .values(
                    outcome=rng.choice([Outcome.answered, Outcome.unanswered]),
                    wait_seconds=rng.choice([2, 15, 19, 44]),
                    answer_seconds=rng.choice([8, 15, 25, 50]),
                    version=Call.version + 1,
                    updated_at=datetime.now(UTC),
                )
            )
    with session_factory.begin() as session:
        make_call(session, started_at=EDGES[3], wait_seconds=300)  # a new maximum on 1 June
    _refresh(session_factory, settings)
    incremental = {r: _report(session_factory, settings, *r) for r in RANGES}
    for first, last in RANGES:
        _assert_equal_day_by_day_and_direct(session_factory, settings, first, last)
    assert incremental[(date(2025, 6, 1), date(2025, 6, 1))].overall.wait_max == 300
    kept = _tables(session_factory)

    with session_factory.begin() as session:
        session.execute(delete(RollupState))
    _refresh(session_factory, settings)
    assert _tables(session_factory) == kept
    for span in RANGES:
        assert _report(session_factory, settings, *span) == incremental[span]


def test_a_day_whose_answered_calls_go_leaves_no_trace_in_its_month(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    with session_factory.begin() as session:
        gone = make_call(session, started_at=EDGES[2], wait_seconds=77).id  # 31 May, WITA
        make_call(session, started_at=EDGES[3], wait_seconds=5)  # 1 June
    _refresh(session_factory, settings)
    with session_factory.begin() as session:
        session.execute(
            update(Call)
            .where(Call.id == gone)
            .values(outcome=Outcome.unanswered, version=Call.version + 1)
        )
    _refresh(session_factory, settings)
    with session_factory() as session:
        assert session.execute(select(MonthlyWait.month, MonthlyWait.wait_seconds)).all() == [
            (202506, 5)
        ]
    may = _report(session_factory, settings, date(2025, 5, 1), date(2025, 5, 31))
    assert may.overall.wait_max is None
    assert may.overall.total == 1
