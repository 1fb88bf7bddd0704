"""Migrations on PostgreSQL: one transaction each, none waits for ever on a lock, and backfills
commit chunk by chunk outside the DDL (issue 18, item 8). A reader holding calls (as the API
does) makes the first migration that alters calls give up after lock_timeout; the migrations
before it stay applied."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from callcenter.db import make_engine
from callcenter.db.migrate import current_revisions, head_revisions, upgrade
from tests.conftest import new_postgres_database

pytestmark = pytest.mark.postgres


def test_a_migration_that_cannot_get_its_lock_gives_up_and_earlier_ones_stay() -> None:
    with new_postgres_database("cc_locks") as url:
        _gives_up_and_keeps_earlier_ones(url)


def _gives_up_and_keeps_earlier_ones(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine, "0004_incidents")
    reader = make_engine(url)
    errors: list[BaseException] = []
    with reader.connect() as connection:
        connection.execute(text("LOCK TABLE calls IN ACCESS SHARE MODE"))  # a long report

        def migrate() -> None:
            try:
                upgrade(engine, lock_timeout="1s")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=migrate)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "the migration waited for the lock with no end"
        connection.rollback()
    reader.dispose()
    assert len(errors) == 1
    assert isinstance(errors[0], OperationalError)
    assert "lock timeout" in str(errors[0])
    # 0005 touches call_events only: applied and committed on its own; 0006 drops the foreign
    # key from call_events to calls, which needs calls: it gave up, rolled back.
    assert current_revisions(engine) == {"0005_call_events_raw"}
    upgrade(engine)  # nothing holds calls now
    assert current_revisions(engine) == head_revisions(engine)
    engine.dispose()


EVENTS = 12_000  # more than two chunks of the backfill (5,000 rows each)


def test_the_listener_inserts_events_while_a_migration_backfills_them() -> None:
    """0005 adds call_events.raw and fills it from every row's headers: the column is committed
    first and the backfill commits chunk by chunk, so an insert into call_events (the listener's)
    is not held for the length of the backfill. Held after its first chunk, the backfill has not
    ended when the insert completes; the row inserted meanwhile gets its raw text too."""
    with new_postgres_database("cc_backfill") as url:
        _inserts_during_backfill(url)


def _inserts_during_backfill(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine, "0004_incidents")
    headers = json.dumps([["Event", "Newstate"], ["Uniqueid", "1.1"]])
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO call_events (pbx, dedup_key, name, event_time, received_at, headers)"
                " SELECT 'pbx', 'k' || n, 'Newstate', now(), now(), CAST(:headers AS JSON)"
                " FROM generate_series(1, :events) AS n"
            ),
            {"headers": headers, "events": EVENTS},
        )
    chunks = 0
    backfilling, release = threading.Event(), threading.Event()

    def hold_after_first_chunk(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal chunks
        if statement.startswith("UPDATE call_events SET raw"):
            chunks += 1
            if chunks == 2:  # the first chunk has committed
                backfilling.set()
                release.wait(60)

    event.listen(engine, "before_cursor_execute", hold_after_first_chunk)
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade(engine, "0005_call_events_raw")
        except BaseException as exc:
            errors.append(exc)

    migration = threading.Thread(target=migrate)
    migration.start()
    listener = make_engine(url)
    try:
        assert backfilling.wait(60), "the backfill never reached its second chunk"
        inserted = threading.Event()

        def insert() -> None:
            with listener.begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO call_events (pbx, dedup_key, name, event_time, received_at,"
                        " headers) VALUES ('pbx', 'late', 'Newstate', now(), now(),"
                        " CAST(:headers AS JSON))"
                    ),
                    {"headers": headers},
                )
            inserted.set()

        inserter = threading.Thread(target=insert)
        inserter.start()
        completed = inserted.wait(30)
        still_backfilling = migration.is_alive() and not release.is_set()
    finally:
        release.set()
        migration.join(120)
    inserter.join(30)
    event.remove(engine, "before_cursor_execute", hold_after_first_chunk)
    assert completed, "the insert waited for the backfill"
    assert still_backfilling
    assert not errors, errors
    assert current_revisions(engine) == {"0005_call_events_raw"}
    with listener.connect() as connection:
        missing = connection.execute(text("SELECT count(*) FROM call_events WHERE raw IS NULL"))
        late = connection.execute(text("SELECT raw FROM call_events WHERE dedup_key = 'late'"))
        assert missing.scalar() == 0
        assert late.scalar() == "Event: Newstate\r\nUniqueid: 1.1"
    listener.dispose()
    engine.dispose()
