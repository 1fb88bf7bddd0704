"""Migration 0015: the monthly histograms start equal to the daily ones they sum, each day's
answer-time figures to those of its histograms, and a refresh after it keeps them so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.orm import Session

from callcenter.db import make_engine
from callcenter.db.migrate import alembic_config, upgrade
from callcenter.models import Call
from callcenter.stats import rollup
from callcenter.stats.models import DailyTimes, MonthlyAnswer, MonthlyWait, RollupState
from tests.builders import make_call

# (local_day, seconds, calls) of both daily histograms
WAITS = [(20250531, 3, 2), (20250531, 40, 1), (20250501, 3, 1), (20250601, 12, 4)]
ANSWERS = [(20250531, 9, 2), (20250531, 46, 1), (20250501, 9, 1), (20250601, 18, 4)]
# (local_day, outcome, calls): 2 June had calls, none answered.
DETAIL = [
    (20250501, "answered", 1),
    (20250531, "answered", 3),
    (20250601, "answered", 4),
    (20250602, "unanswered", 2),
]


def _insert_daily(connection: Connection) -> None:
    for kind, rows in (("wait", WAITS), ("answer", ANSWERS)):
        connection.execute(
            text(
                f"INSERT INTO stats_{kind}_daily (local_day, {kind}_seconds, calls) "
                "VALUES (:d, :s, :n)"
            ),
            [{"d": d, "s": s, "n": n} for d, s, n in rows],
        )
    connection.execute(
        text(
            "INSERT INTO stats_daily (local_day, outcome, classification, reason, operator, "
            "calls, talk_count, talk_sum, overflowed) VALUES (:d, :o, '', '', '', :n, 0, 0, 0)"
        ),
        [{"d": d, "o": o, "n": n} for d, o, n in DETAIL],
    )


def test_the_new_rollups_start_equal_to_the_daily_histograms(unmigrated_database: str) -> None:
    engine = make_engine(unmigrated_database)
    upgrade(engine, "0014_stats_monthly")
    with engine.begin() as connection:
        _insert_daily(connection)
    upgrade(engine)
    with engine.connect() as connection:
        waits = connection.execute(
            text("SELECT month, wait_seconds, calls FROM stats_wait_monthly ORDER BY 1, 2")
        ).all()
        answers = connection.execute(
            text("SELECT month, answer_seconds, calls FROM stats_answer_monthly ORDER BY 1, 2")
        ).all()
        times = connection.execute(
            text(
                "SELECT local_day, calls, answered, unanswered, "
                "wait_count, wait_p50, wait_p90, wait_max, answer_count, "
                "answer_p50, answer_p95, answer_within_10, answer_within_20 "
                "FROM stats_times_daily ORDER BY local_day"
            )
        ).all()
    assert [tuple(r) for r in waits] == [(202505, 3, 3), (202505, 40, 1), (202506, 12, 4)]
    assert [tuple(r) for r in answers] == [(202505, 9, 3), (202505, 46, 1), (202506, 18, 4)]
    assert [tuple(r) for r in times] == [
        (20250501, 1, 1, 0, 1, 3, 3, 3, 1, 9, 9, 1, 1),
        (20250531, 3, 3, 0, 3, 3, 40, 40, 3, 9, 46, 2, 2),
        (20250601, 4, 4, 0, 4, 12, 12, 12, 4, 18, 18, 0, 4),
        (20250602, 2, 0, 2, 0, None, None, None, 0, None, None, 0, 0),
    ]
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0014_stats_monthly")
    tables = set(inspect(engine).get_table_names())
    assert not {"stats_wait_monthly", "stats_answer_monthly", "stats_times_daily"} & tables
    engine.dispose()


def test_a_refresh_after_the_migration_equals_a_full_rebuild(unmigrated_database: str) -> None:
    """Rollups built before 0015, the migration, then calls change: the refresh moves the
    backfilled rows by its differences, and ends where a rebuild from scratch ends."""
    engine = make_engine(unmigrated_database)
    upgrade(engine)
    tz, safety = "Asia/Makassar", timedelta(minutes=10)
    with Session(engine) as session, session.begin():
        for n, wait in enumerate((3, 40, 12, 12, 70)):
            make_call(
                session,
                started_at=datetime(2025, 5, 31, 15, 58, tzinfo=UTC) + timedelta(minutes=n),
                wait_seconds=wait,
            )
        rollup.refresh(session, timezone=tz, safety=safety)
    # As if the rollups had been built by the code before 0015: its tables emptied, then
    # filled again by the migration.
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0014_stats_monthly")
    upgrade(engine)

    def new_rollups() -> list[list[tuple[object, ...]]]:
        with Session(engine) as session:
            return [
                sorted(tuple(r) for r in session.execute(select(*model.__table__.columns)))
                for model in (MonthlyWait, MonthlyAnswer, DailyTimes)
            ]

    migrated = new_rollups()
    assert [len(rows) for rows in migrated] == [4, 4, 2]
    with Session(engine) as session, session.begin():
        first = session.scalars(select(Call).order_by(Call.id).limit(1)).one()
        first.wait_seconds = 90  # 31 May, 23:58 WITA
        first.answer_seconds = 96
        rollup.refresh(session, timezone=tz, safety=safety)
    refreshed = new_rollups()
    assert refreshed != migrated
    with Session(engine) as session, session.begin():
        session.execute(text("DELETE FROM stats_rollup_state"))
        assert session.get(RollupState, 1) is None
        rollup.refresh(session, timezone=tz, safety=safety)
    assert new_rollups() == refreshed
    engine.dispose()
