"""Whatever arrives, the listener goes on and loses nothing (issue 14, items 1, 2, 4, 5).

Each test replays recorded traces, changed the way a PBX, a network or an operator's mistake
would change them, through the real listener into both databases.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.ami.call_state import event_time
from callcenter.ami.fake_server import Chunk, Recording, coalesce
from callcenter.ami.frames import Frame, headers_of
from callcenter.ami.models import QuarantinedRow
from callcenter.db import make_engine, make_sessionmaker
from callcenter.models import Call, CallEvent
from tests.ami.helpers import (
    check_call,
    expected_calls,
    exported,
    replay,
    wall_clock,
)
from tests.ami.test_faults import database_locked
from tests.conftest import TRACES

ANSWERED = TRACES / "01-answered"
ABANDONED = TRACES / "02-abandoned"
CONCURRENT = TRACES / "13-combined-concurrent"


def frames(folder: Path, *, stamp: bool = True) -> list[Chunk]:
    return Recording.load(folder, stamp=stamp).frames


def _quarantined(database_url: str) -> list[tuple[str, str | None]]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(select(QuarantinedRow.kind, QuarantinedRow.uniqueid)).all()
            return [(kind, uniqueid) for kind, uniqueid in rows]
    finally:
        engine.dispose()


def count(database_url: str, model: type[CallEvent] | type[QuarantinedRow]) -> int:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        found = session.scalar(select(func.count()).select_from(model)) or 0
    engine.dispose()
    return found


def call_row(database_url: str, uniqueid: str) -> Call:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        call = session.scalars(select(Call).where(Call.uniqueid == uniqueid)).one()
    engine.dispose()
    return call


def assert_as_expected(database_url: str, folder: Path) -> None:
    rows = exported(database_url)
    clock = wall_clock(folder)
    for call in expected_calls(folder):
        check_call(rows[call["uniqueid"]], call, clock)


@pytest.mark.parametrize(
    "cause",
    [
        "99999999999999999999",  # past 64 bits: orjson's TypeError killed the consumer
        "10000000000000000000",  # past int64: SQLite's OverflowError
        "3000000000",  # past int4: PostgreSQL refused the batch
    ],
)
def test_a_hangup_cause_no_column_takes_stops_nothing(
    database_url: str, tmp_path: Path, cause: str
) -> None:
    odd = [
        Chunk(re.sub(rb"(?<=\r\nCause: )\d+", cause.encode(), c.data), c.at)
        if c.data.startswith(b"Event: Hangup\r\n")
        else c
        for c in frames(ANSWERED)
    ]
    later_call = frames(ABANDONED)

    listener, _fake = replay(database_url, [coalesce([*odd, *later_call])], tmp_path / "spool")

    assert listener.counters.consumer_restarts == 0
    answered = call_row(database_url, expected_calls(ANSWERED)[0]["uniqueid"])
    assert answered.outcome == "answered"
    assert answered.ended_at is not None
    assert answered.hangup_cause is None  # no INTEGER column takes it ...
    kept = answered.telephony_state["hangup_cause"]
    assert str(kept) == cause  # ... the call's state keeps it (as text past 64 bits)
    assert_as_expected(database_url, ABANDONED)  # every later call is stored
    hangups = [e for e in _events(database_url) if e.name == "Hangup"]
    assert any(dict(headers_of(e.raw)).get("Cause") == cause for e in hangups)


def _events(database_url: str) -> list[CallEvent]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        events = list(session.scalars(select(CallEvent).order_by(CallEvent.id)))
    engine.dispose()
    return events


def _renamed(chunks: list[Chunk], renames: dict[str, str]) -> list[Chunk]:
    out = []
    for chunk in chunks:
        data = chunk.data
        for old, new in renames.items():
            data = re.sub(rb"(?<![\d.])" + re.escape(old.encode()) + rb"(?!\d)", new.encode(), data)
        out.append(Chunk(data, chunk.at))
    return out


def test_long_uniqueids_lose_no_other_call(
    database_url: str, tmp_path: Path, sqlite_template: Path
) -> None:
    """Trace 13 with one call's Uniqueid 100 characters long (Asterisk allows 150) and one's
    200: the first is stored, the second stored or quarantined, and every event of the four
    other calls is stored (PostgreSQL refused whole batches, losing 43 events of 4 calls)."""
    fits, too_long = "1795828848.87", "1795828845.81"
    renames = {fits: "7" * 90 + "." + "8" * 9, too_long: "9" * 190 + "." + "1" * 9}
    odd = _renamed(frames(CONCURRENT), renames)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    shutil.copy(sqlite_template, tmp_path / "reference.db")
    replay(reference, [coalesce(frames(CONCURRENT))], tmp_path / "spool-ref")

    listener, _fake = replay(database_url, [coalesce(odd)], tmp_path / "spool")

    rows = exported(database_url)
    clock = wall_clock(CONCURRENT)
    for call in expected_calls(CONCURRENT):
        uniqueid = renames.get(call["uniqueid"], call["uniqueid"])
        if uniqueid == renames[too_long] and uniqueid not in rows:
            continue  # refused even alone (PostgreSQL): quarantined, checked below
        row = rows[uniqueid]
        if uniqueid in renames.values():
            assert row["outcome"] == {"abandoned": "abandoned_in_queue"}.get(
                call["outcome"], "abandoned_in_ivr"
            )
            continue
        check_call(row, call, clock)
    quarantined = _quarantined(database_url)
    assert len(quarantined) == listener.counters.quarantined_rows
    if renames[too_long] in rows:
        assert quarantined == []
    else:
        # The refused call's state, once for each batch that carried it (how the stream falls
        # into batches depends on timing), and nothing else.
        assert quarantined
        assert set(quarantined) == {("call", renames[too_long])}
    assert count(database_url, CallEvent) == count(reference, CallEvent)
    assert listener.counters.consumer_restarts == 0


def test_restart_with_a_spool_drains_it_before_deciding_on_open_calls(
    database_url: str, tmp_path: Path
) -> None:
    """The call is stored queued; the database goes away while it is answered and ends (the
    spool holds that); a new listener starts: it must store the answer, not close the queued
    call as a gap (it became abandoned_in_ivr, gap, with no times)."""
    chunks = frames(ANSWERED)
    joined = next(i for i, c in enumerate(chunks) if b"Event: QueueCallerJoin" in c.data)
    spool = tmp_path / "spool"
    replay(database_url, [coalesce(chunks[: joined + 1])], spool)
    queued = call_row(database_url, expected_calls(ANSWERED)[0]["uniqueid"])
    assert queued.outcome == "queued"

    with database_locked(database_url):
        first, _fake = replay(database_url, [coalesce(chunks[joined + 1 :])], spool)
        assert len(first.spool) > 0

    # A new listener on the same spool; the PBX goes on with another call.
    second, _fake = replay(database_url, [coalesce(frames(ABANDONED))], spool)

    assert len(second.spool) == 0
    assert_as_expected(database_url, ANSWERED)
    assert_as_expected(database_url, ABANDONED)


def test_a_trace_replayed_with_and_without_timestamps_is_stored_once(
    database_url: str, tmp_path: Path
) -> None:
    replay(database_url, [coalesce(frames(CONCURRENT, stamp=True))], tmp_path / "spool1")
    events = count(database_url, CallEvent)
    calls = len(exported(database_url))

    replay(database_url, [coalesce(frames(CONCURRENT, stamp=False))], tmp_path / "spool2")

    assert count(database_url, CallEvent) == events
    assert len(exported(database_url)) == calls == 6
    # Repeated events (a VarSet sent twice) are kept, each once.
    keys = [e.dedup_key for e in _events(database_url)]
    assert any("#2" in key for key in keys)
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("stamp", ["1e18", "-1e18", "nan", "inf", "99999999999999999999"])
def test_a_timestamp_no_clock_has_is_the_arrival_time(stamp: str) -> None:
    """``Timestamp: 1e18`` raised OSError (year past 9999) out of the tracker."""
    arrived = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    frame = Frame([("Event", "Hangup"), ("Timestamp", stamp), ("Uniqueid", "1.1")])
    assert event_time(frame, arrived) == arrived
