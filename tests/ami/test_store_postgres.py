"""The store on PostgreSQL when the connection dies in the middle of a batch's COPY."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from callcenter.ami import event_rows
from callcenter.ami.batch import Batch
from callcenter.ami.fake_server import Recording
from callcenter.ami.frames import read_frame
from callcenter.ami.identity import EventKeys
from callcenter.ami.store import CallStore, StoreRejected, StoreUnavailable
from callcenter.ami.tracker import CallTracker
from callcenter.db import make_engine, make_sessionmaker
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
