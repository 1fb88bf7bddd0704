"""The caller rows the store keeps from call states: each call counted once, in the caller its
latest number belongs to, however the changes fall into batches (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event, select

from callcenter.ami.batch import Batch
from callcenter.ami.call_state import CallState
from callcenter.ami.store import CallStore
from callcenter.db import make_sessionmaker
from callcenter.models import Call, Caller

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
FIRST = "081234567890"
SECOND = "081298765432"


def call(uniqueid: str, number: str, minutes: int) -> CallState:
    started = T0 + timedelta(minutes=minutes)
    return CallState(
        uniqueid=uniqueid,
        linkedid=uniqueid,
        channel=f"PJSIP/trunk-{uniqueid}",
        started_at=started,
        last_event_at=started,
        caller_id_raw=number,
    )


def write(store: CallStore, *states: CallState) -> None:
    batch = Batch()
    for state in states:
        batch.add(None, state)
    store.write(batch)


def callers(engine: Engine) -> dict[str, tuple[int, str, datetime]]:
    with make_sessionmaker(engine)() as session:
        rows = session.execute(
            select(Caller.raw_last, Caller.call_count, Caller.last_seen_at, Caller.number_key)
        )
        return {r.number_key: (r.call_count, r.raw_last, r.last_seen_at) for r in rows}


def test_each_call_counts_once_in_its_latest_callers_row(engine: Engine) -> None:
    store = CallStore(make_sessionmaker(engine), pbx="pbx-a")
    # One batch: two new calls from one number, the later one written first.
    write(store, call("1.2", FIRST, 5), call("1.1", FIRST, 1))
    # The same calls again (a later batch): counted once, not twice.
    write(store, call("1.1", FIRST, 1), call("1.2", FIRST, 5))
    (first_key,) = callers(engine)
    assert callers(engine)[first_key] == (2, FIRST, T0 + timedelta(minutes=5))

    # The first call's caller ID turns out to be another number, in the batch that adds a
    # third call from the first number: one call moves, one is added.
    write(store, call("1.1", SECOND, 1), call("1.3", FIRST, 9))
    rows = callers(engine)
    second_key = next(key for key in rows if key != first_key)
    assert rows[first_key] == (2, FIRST, T0 + timedelta(minutes=9))
    assert rows[second_key] == (1, SECOND, T0 + timedelta(minutes=1))

    # A withheld number has no caller row: the call leaves the one it was in.
    write(store, call("1.3", "", 9))
    assert callers(engine)[first_key] == (1, FIRST, T0 + timedelta(minutes=9))

    with make_sessionmaker(engine)() as session:
        linked = dict(session.execute(select(Call.uniqueid, Call.caller_key_id)).all())
        ids = dict(session.execute(select(Caller.number_key, Caller.id)).all())
    assert linked == {"1.1": ids[second_key], "1.2": ids[first_key], "1.3": None}


def test_a_batch_finds_its_callers_in_as_many_statements_however_many_are_new(
    engine: Engine,
) -> None:
    """Each round trip to PostgreSQL costs a batch (and every event waiting behind it) time:
    new numbers are found or made together, not two statements each. (Only statements on
    callers are counted: SQLite inserts calls a row at a time to return their ids in order.)"""
    store = CallStore(make_sessionmaker(engine), pbx="pbx-a")
    statements: list[str] = []

    def count(*args: object) -> None:
        if " callers" in str(args[2]):
            statements.append(str(args[2]))

    def statements_for(*states: CallState) -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            write(store, *states)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    one = statements_for(call("2.0", "081200000000", 0))
    many = statements_for(*(call(f"3.{n}", f"0812000{n:05d}", n) for n in range(1, 51)))
    assert many == one
    assert set(callers(engine).values()) >= {
        (1, f"0812000{n:05d}", T0 + timedelta(minutes=n)) for n in range(1, 51)
    }
