"""The rollups never stay wrong: every listener update is seen, whatever time it was stamped
with, and refreshes running while calls change end equal to a full rebuild (issue 18, item 4)."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.call_rows import UPDATE_CALLS
from callcenter.db import utcnow
from callcenter.models import Call, Classification, Outcome
from callcenter.stats import rollup
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
    RollupState,
)
from tests.builders import make_call

TZ = "Asia/Makassar"
SAFETY = timedelta(minutes=10)
TABLES = (
    HourlyCount,
    DailyDetail,
    MonthlyDetail,
    DailyWait,
    MonthlyWait,
    DailyAnswer,
    MonthlyAnswer,
    DailyTimes,
    DailyPrankCaller,
    MonthlyPrankCaller,
)


def _refresh(engine: Engine) -> int:
    return rollup.refresh_in_snapshot(engine, timezone=TZ, safety=SAFETY)


def _rollups(factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with factory() as session:
        return {
            model.__tablename__: sorted(
                tuple(getattr(row, c.key) for c in model.__table__.columns)
                for row in session.scalars(select(model))
            )
            for model in TABLES
        }


def _rebuilt(engine: Engine, factory: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with factory.begin() as session:
        session.execute(delete(RollupState))
    _refresh(engine)
    return _rollups(factory)


def _listener_update(factory: sessionmaker[Session], call_id: int, **values: Any) -> None:
    """The AMI listener's own UPDATE statement (ami.call_rows), with the time it stamps."""
    with factory.begin() as session:
        session.execute(UPDATE_CALLS, [{"row_id": call_id, **values}])


def test_a_listener_update_stamped_inside_the_safety_window_reaches_the_rollups(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        first = make_call(session, outcome=Outcome.answered)
        make_call(session, outcome=Outcome.answered)
        first_id, stamped = first.id, first.updated_at
    _refresh(engine)
    # Stamped before the refresh's watermark (its transaction began earlier), committed after.
    _listener_update(session_factory, first_id, outcome=Outcome.failed, updated_at=stamped)
    _refresh(engine)
    incremental = _rollups(session_factory)
    with session_factory() as session:
        failed = session.scalars(
            select(DailyDetail.calls).where(DailyDetail.outcome == Outcome.failed.value)
        ).all()
    assert failed == [1]
    assert incremental == _rebuilt(engine, session_factory)


def test_refreshes_while_calls_change_end_equal_to_a_full_rebuild(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    start = datetime(2025, 5, 1, 1, 0, tzinfo=UTC)
    with session_factory.begin() as session:
        ids = [
            make_call(
                session,
                started_at=start + timedelta(hours=n * 7),
                caller=f"0812345678{n % 7:02d}",
            ).id
            for n in range(40)
        ]
    _refresh(engine)
    stop = threading.Event()
    errors: list[BaseException] = []

    def retag(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                with session_factory.begin() as session:
                    session.execute(
                        update(Call)
                        .where(Call.id == rng.choice(ids))
                        .values(
                            classification=rng.choice(list(Classification)),
                            version=Call.version + 1,
                            updated_at=utcnow(),
                        )
                    )
        except BaseException as exc:
            errors.append(exc)

    def listen(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                # Stamped now, committed a little later: as a listener batch does.
                stamp = utcnow()
                time.sleep(rng.random() / 100)
                _listener_update(
                    session_factory,
                    rng.choice(ids),
                    outcome=rng.choice([Outcome.answered, Outcome.failed, Outcome.unanswered]),
                    updated_at=stamp,
                )
        except BaseException as exc:
            errors.append(exc)

    def refresh() -> None:
        try:
            while not stop.is_set():
                _refresh(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=retag, args=(1,)),
        threading.Thread(target=listen, args=(2,)),
        threading.Thread(target=listen, args=(3,)),
        threading.Thread(target=refresh),
        threading.Thread(target=refresh),
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    _refresh(engine)
    assert _rollups(session_factory) == _rebuilt(engine, session_factory)
