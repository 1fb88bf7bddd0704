"""The store on PostgreSQL when the connection dies in the middle of a batch's COPY."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from callcenter.ami import event_rows
from callcenter.ami.batch import Batch
from callcenter.ami.fake_server import Recording
from callcenter.ami.frames import read_frame
from callcenter.ami.identity import EventKeys
from callcenter.ami.store import CallStore, StoreRejected, StoreUnavailable
from callcenter.ami.tracker import CallTracker
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.idle_ping import ping_when_idle
from callcenter.db.migrate import upgrade
from callcenter.models import Call, CallEvent
from tests.conftest import POSTGRES_ADMIN_URL, TRACES, new_postgres_database


def recorded_batch() -> Batch:
    tracker = CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])
    batch = Batch()
    keys = EventKeys()
    now = datetime.now(UTC)
    for chunk in Recording.load(TRACES / "01-answered", stamp=True).frames:
        frame, _ = read_frame(chunk.data.removesuffix(b"\r\n\r\n"))
        if frame is None or not frame.is_event:
            continue
        tracked = tracker.feed(frame, now)
        batch.add_tracked(frame, tracked, now, keys)
    return batch


@pytest.mark.postgres
def test_a_connection_cut_during_copy_is_unavailable_and_the_batch_stored_whole_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch = recorded_batch()
    assert batch.events
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    real_copy = event_rows._copy_events

    def copy_on_a_cut_connection(session: Session, rows: list[tuple[Any, ...]]) -> None:
        pid = session.connection().connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        real_copy(session, rows)

    with new_postgres_database("cc_copy_cut") as url:
        engine = make_engine(url)
        upgrade(engine)
        store = CallStore(make_sessionmaker(engine), pbx="copy-cut")
        monkeypatch.setattr(event_rows, "_copy_events", copy_on_a_cut_connection)
        with pytest.raises(StoreUnavailable):
            store.write(batch)
        monkeypatch.setattr(event_rows, "_copy_events", real_copy)
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(Call)).scalar_one() == 0

        store.write(batch)  # the database answers again: the same batch, whole

        with engine.connect() as connection:
            events = connection.execute(select(func.count()).select_from(CallEvent)).scalar_one()
            calls = connection.execute(select(func.count()).select_from(Call)).scalar_one()
        engine.dispose()
    admin.dispose()
    assert (events, calls) == (len(batch.events), len(batch.calls))


@pytest.mark.postgres
def test_data_copy_refuses_is_rejected_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    # PostgreSQL refuses NUL in text (the store writes it as "\\x00"); were one to slip through,
    # COPY's own error must come out as StoreRejected, which the listener knows how to handle.
    monkeypatch.setattr(event_rows, "_raw_text", lambda frame: frame.text + "\x00")
    with new_postgres_database("cc_copy_refused") as url:
        engine = make_engine(url)
        upgrade(engine)
        store = CallStore(make_sessionmaker(engine), pbx="copy-refused")
        with pytest.raises(StoreRejected, match="0x00"):
            store.write(recorded_batch())
        with engine.connect() as connection:
            calls = connection.execute(select(func.count()).select_from(Call)).scalar_one()
        engine.dispose()
    assert calls == 0  # the batch's call rows were rolled back with it


@pytest.mark.postgres
def test_a_batch_with_events_already_stored_is_written_again_the_careful_way() -> None:
    """No savepoint around the COPY: an event already stored aborts the whole transaction, and
    the batch is written again through the scratch table: its new events and calls stored, the
    others not twice, the caller counted once."""
    batch = recorded_batch()
    half = len(batch.events) // 2
    first = Batch(events=batch.events[:half], calls=dict(batch.calls))
    with new_postgres_database("cc_copy_again") as url:
        engine = make_engine(url)
        upgrade(engine)
        store = CallStore(make_sessionmaker(engine), pbx="copy-again")
        store.write(first)
        store.write(batch)  # the first half again, then the rest
        store.write(batch)  # all of it again
        with engine.connect() as connection:
            events = connection.execute(select(func.count()).select_from(CallEvent)).scalar_one()
            calls = connection.execute(select(func.count()).select_from(Call)).scalar_one()
            counts = connection.execute(text("SELECT call_count FROM callers")).scalars().all()
        engine.dispose()
    assert (events, calls) == (len(batch.events), len(batch.calls))
    assert counts == [1] * len(batch.calls)


@pytest.mark.postgres
def test_a_connection_that_died_idle_is_replaced_and_a_busy_one_is_not_pinged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listener's engine (AmiRuntime): no pool_pre_ping round trip before every batch, but a
    connection that sat idle is checked, and replaced when dead, so the batch is written."""
    batch = recorded_batch()
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with new_postgres_database("cc_idle_ping") as url:
        engine = make_engine(url, pool_pre_ping=False)
        upgrade(engine)
        engine.dispose()
        pings: list[object] = []
        real_ping = engine.dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            pings.append(dbapi_connection)
            return real_ping(dbapi_connection)

        monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
        ping_when_idle(engine, idle_seconds=3600)
        store = CallStore(make_sessionmaker(engine), pbx="idle-ping")
        store.write(batch)
        store.write(batch)
        assert pings == []  # handed back a moment ago: not pinged

        database = make_url(url).database
        with admin.connect() as connection:  # PostgreSQL restarted, as seen by the pool
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            )
        ping_when_idle(engine, idle_seconds=0)  # every connection has now sat idle long enough
        store.write(batch)  # not StoreUnavailable: the dead connection was replaced
        assert pings
        with engine.connect() as connection:
            events = connection.execute(select(func.count()).select_from(CallEvent)).scalar_one()
        engine.dispose()
    admin.dispose()
    assert events == len(batch.events)
