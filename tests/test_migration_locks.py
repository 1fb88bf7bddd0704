"""Migrations on PostgreSQL: one transaction each, and none waits for ever on a lock (issue 18,
item 8). A reader holding calls (as the API does) makes the first migration that alters calls
give up after lock_timeout; the migrations before it stay applied."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
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
