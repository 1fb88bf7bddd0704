"""Faults: a cut connection, a database outage, a stream twice, junk, odd frames, Latin-1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from callcenter.ami.frames import headers_of
from callcenter.db import make_engine, make_sessionmaker
from callcenter.models import Call, Caller, CallEvent
from tests.ami.helpers import (
    assert_matches_expected,
    check_call,
    expected_calls,
    exported,
    make_listener,
    recording_plan,
    replay,
    wait_for,
    wall_clock,
)
from tests.conftest import TRACES

ANSWERED = TRACES / "01-answered"
CONCURRENT = TRACES / "13-combined-concurrent"
LATIN1 = TRACES / "10-callerid-edge-cases"


def frames(folder: Path) -> list[Chunk]:
    return Recording.load(folder, stamp=True).frames


def stored_events(database_url: str) -> list[CallEvent]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        events = list(session.scalars(select(CallEvent).order_by(CallEvent.id)))
    engine.dispose()
    return events


def test_connection_cut_mid_call_and_restored(database_url: str, tmp_path: Path) -> None:
    recorded = frames(CONCURRENT)
    before = [c for c in recorded if c.at is not None and c.at < 10]
    lost = [c for c in recorded if c.at is not None and 10 <= c.at < 30]
    after = [c for c in recorded if c.at is not None and c.at >= 30]

    with FakeAsterisk([before, after], skipped=[lost], close_at_end=False) as fake:
        listener, store = make_listener(database_url, fake.port, tmp_path / "spool")
        listener.start()
        wait_for(fake.finished.is_set, "the second connection's stream sent")
        wait_for(lambda: listener.counters.gap_closed_calls > 0, "the gap reconciled")
        wait_for(lambda: not listener.tracker.calls, "every call ended")
        # Frames can follow the last Hangup (an AgentComplete after a Redirect does): stop only
        # once the listener has read the whole stream.
        last_sent = max(
            float(m) for c in after for m in re.findall(rb"Timestamp: ([0-9.]+)", c.data)
        )
        wait_for(
            lambda: (
                (t := listener.tracker.last_event_time) is not None
                and t.timestamp() >= last_sent - 1e-6
            ),
            "the last frame read",
        )
        listener.stop()
        store.engine.dispose()

    assert fake.connections == 2
    assert any(("Action", "CoreShowChannels") in action for action in fake.received)
    rows = exported(database_url)
    calls = {c["uniqueid"]: c for c in expected_calls(CONCURRENT)}
    assert sorted(rows) == sorted(calls)  # every call is there, once
    clock = wall_clock(CONCURRENT)
    last_before = max(c.at for c in before if c.at is not None)
    gap_began = max(t for t in clock.values() if t <= clock[last_before])
    for uniqueid, call in calls.items():
        row = rows[uniqueid]
        if 10 <= call["t_hangup"] < 30:
            # Ended while nobody listened: closed at reconnect, never left open.
            assert row["gap"] is True, uniqueid
            assert row["outcome"] in ("answered", "abandoned_in_queue", "abandoned_in_ivr")
            assert row["ended_at"] is None
            assert row["ended_by"] is None
        elif call["t_hangup"] >= 30:
            # Still up after the gap: tracked to its end. AgentConnect may have been lost,
            # so answered_at comes from Asterisk's TalkTime (a second's precision).
            check_call(row, call, clock, tolerance=1.5)
        else:
            check_call(row, call, clock)
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        gaps = session.scalars(select(Call).where(Call.gap.is_(True))).all()
        assert gaps
        for gap_call in gaps:
            assert gap_call.gap_started_at is not None
            assert abs(gap_call.gap_started_at.timestamp() - gap_began) < 0.2
    engine.dispose()
    assert listener.counters.gap_closed_calls == len(gaps)


@contextmanager
def database_locked(database_url: str) -> Iterator[None]:
    """A real outage for writers: another session holds the database's write lock."""
    engine = make_engine(database_url)
    connection = engine.connect()
    if engine.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN EXCLUSIVE")
    else:
        connection.exec_driver_sql(
            "LOCK TABLE calls, call_events, callers IN ACCESS EXCLUSIVE MODE"
        )
    try:
        yield
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


def test_database_unavailable_for_a_while(database_url: str, tmp_path: Path) -> None:
    with database_locked(database_url), FakeAsterisk(recording_plan(ANSWERED)) as fake:
        listener, store = make_listener(
            database_url, fake.port, tmp_path / "spool", stop_at_eof=True
        )
        listener.start()
        wait_for(lambda: listener.counters.spooled_batches > 0, "a batch spooled")
        wait_for(lambda: not listener._threads[1].is_alive(), "the stream ended")
        wait_for(listener._queue.empty, "every frame taken from the queue")
        assert "database unavailable" in listener.readiness()
        assert len(listener.spool) > 0
    # The database is back: the spool drains in order, nothing lost, nothing twice.
    assert listener.wait(60)
    store.engine.dispose()
    assert len(listener.spool) == 0
    assert_matches_expected(database_url, ANSWERED)
    events = stored_events(database_url)
    assert len(events) == len({e.dedup_key for e in events})
    times = [e.event_time for e in events]
    assert times == sorted(times)


def test_same_stream_twice_changes_nothing(database_url: str, tmp_path: Path) -> None:
    replay(database_url, recording_plan(CONCURRENT), tmp_path / "spool1")
    first_rows = exported(database_url)
    first_events = len(stored_events(database_url))

    replay(database_url, recording_plan(CONCURRENT), tmp_path / "spool2")

    assert exported(database_url) == first_rows
    assert len(stored_events(database_url)) == first_events
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        counted = session.scalar(select(func.sum(Caller.call_count)))
        calls = session.scalar(select(func.count()).select_from(Call))
    engine.dispose()
    assert calls == 6
    assert counted == 6  # one per call, not two


def test_garbage_between_frames_is_skipped(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    junk = [
        b"\x00\xff\xfe\x80\x81 binary junk\r\n\r\n",
        b"line without a colon\r\n\r\n",
        b"\x01\x02\x03",  # glued to the next frame's first line
        bytes(range(256)).replace(b"\r\n", b"") + b"\r\n",
    ]
    chunks: list[Chunk] = []
    for index, chunk in enumerate(frames(ANSWERED)):
        chunks.append(Chunk(junk[index % len(junk)]))
        chunks.append(chunk)

    replay(database_url, [coalesce(chunks, 4096)], tmp_path / "spool")

    assert_matches_expected(database_url, ANSWERED)
    assert "skipped garbage" in caplog.text
    assert len(stored_events(database_url)) == len(
        [e for e in stored_events(database_url) if e.name]
    )


def _with_chanvariables(chunk: Chunk) -> Chunk:
    # What Asterisk sends with `channelvars = SIM_LABEL,IVR_CHOICE` in manager.conf.
    if b"\r\nChannel: " not in chunk.data or not chunk.data.startswith(b"Event: "):
        return chunk
    body = chunk.data.removesuffix(b"\r\n\r\n")
    extra = b"\r\nChanVariable: SIM_LABEL=answered\r\nChanVariable: IVR_CHOICE=1"
    return Chunk(body + extra + b"\r\n\r\n", chunk.at)


def test_repeated_keys_and_chanvariable(database_url: str, tmp_path: Path) -> None:
    chunks = [_with_chanvariables(c) for c in frames(ANSWERED)]

    replay(database_url, [coalesce(chunks)], tmp_path / "spool")

    assert_matches_expected(database_url, ANSWERED)
    events = stored_events(database_url)
    hangup = next(e for e in events if e.name == "Hangup")
    assert [v for k, v in headers_of(hangup.raw) if k == "ChanVariable"] == [
        "SIM_LABEL=answered",
        "IVR_CHOICE=1",
    ]


def test_a_64_kib_frame_mid_call(database_url: str, tmp_path: Path) -> None:
    recorded = frames(ANSWERED)
    caller = expected_calls(ANSWERED)[0]
    big = "x" * (64 * 1024)
    frame = (
        f"Event: UserEvent\r\nPrivilege: user,all\r\nChannel: {caller['channel']}\r\n"
        f"Uniqueid: {caller['uniqueid']}\r\nLinkedid: {caller['linkedid']}\r\n"
        f"UserEvent: Big\r\nPayload: {big}\r\n\r\n"
    ).encode()
    middle = len(recorded) // 2
    chunks = [*recorded[:middle], Chunk(frame), *recorded[middle:]]

    replay(database_url, [coalesce(chunks, 1000)], tmp_path / "spool")

    assert_matches_expected(database_url, ANSWERED)
    stored = [e for e in stored_events(database_url) if e.name == "UserEvent"]
    assert [dict(headers_of(e.raw))["Payload"] for e in stored] == [big]


def test_invalid_utf8_caller_name_is_kept(database_url: str, tmp_path: Path) -> None:
    replay(database_url, recording_plan(LATIN1), tmp_path / "spool")

    assert_matches_expected(database_url, LATIN1)
    row = exported(database_url)["1795828770.63"]
    assert row["caller_id_name"] == "José Amáral"
    assert row["caller_id_name"].encode("latin-1") == b"Jos\xe9 Am\xe1ral"
    emoji = exported(database_url)["1795828766.59"]
    assert emoji["caller_id_name"] == "José Martins da Costa 📞"


def test_nul_and_escape_text_in_a_caller_name(database_url: str, tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text and JSON: it is stored as the text \\x00. A caller name
    holding the literal text \\u0000 is kept as it is, not taken for an escape."""
    name = b"Ibu\x00Ana \\u0000"
    chunks = [
        Chunk(re.sub(rb"(?<=\r\nCallerIDName: )[^\r]*", lambda _: name, c.data), c.at)
        for c in frames(ANSWERED)
    ]

    replay(database_url, [coalesce(chunks)], tmp_path / "spool")

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        call = session.scalars(select(Call)).one()
    engine.dispose()
    assert call.caller_id_name == "Ibu\\x00Ana \\u0000"
    assert call.telephony_state["caller_id_name"] == "Ibu\\x00Ana \\u0000"
