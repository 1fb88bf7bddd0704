"""What the listener keeps in memory or asks for on every tick stays bounded (issue 18, item 10):
the caller-id cache, the spool's length, the live bus's wake-ups."""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami import store as store_module
from callcenter.ami.batch import Batch
from callcenter.ami.call_state import CallState
from callcenter.ami.spool import Spool
from callcenter.ami.store import CallStore
from callcenter.live import RESYNC, InProcessBus
from callcenter.models import Caller


def test_the_caller_id_cache_is_bounded_and_counts_stay_right(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_CACHED_CALLERS", 10)
    store = CallStore(session_factory, pbx="bounded")
    start = datetime(2025, 5, 1, 1, 0, tzinfo=UTC)
    for round_ in range(2):  # the second round meets numbers the cache has forgotten
        batch = Batch()
        for n in range(50):
            batch.add(
                None,
                CallState(
                    uniqueid=f"1700000000.{round_}{n:03d}",
                    linkedid=f"1700000000.{round_}{n:03d}",
                    channel="PJSIP/trunk",
                    started_at=start + timedelta(minutes=n),
                    last_event_at=start + timedelta(minutes=n),
                    caller_id_raw=f"08123456{n:04d}",
                ),
            )
        store.write(batch)
        assert len(store._caller_ids) <= 10
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Caller)) == 50
        assert set(session.scalars(select(Caller.call_count))) == {2}


def test_the_spool_length_is_counted_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    state = CallState(
        uniqueid="1.1",
        linkedid="1.1",
        channel="PJSIP/trunk",
        started_at=datetime(2025, 5, 1, tzinfo=UTC),
        last_event_at=datetime(2025, 5, 1, tzinfo=UTC),
    )
    for _ in range(3):
        batch = Batch()
        batch.add(None, state)
        spool.append(batch)
    listings = 0
    real = Spool._files

    def counted(self: Spool) -> list[Path]:
        nonlocal listings
        listings += 1
        return real(self)

    monkeypatch.setattr(Spool, "_files", counted)
    assert [len(spool) for _ in range(1000)] == [3] * 1000
    assert listings == 0  # an idle tick asks this: no directory listing each time
    for path, _ in list(spool.pending()):
        spool.done(path)
    assert len(spool) == 0
    assert len(Spool(tmp_path / "spool", 1 << 20)) == 0


class _CountingLoop(asyncio.SelectorEventLoop):
    """Counts the wake-ups that threads other than its own ask of it (the bus's hand-offs)."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.current_thread()
        self.wake_ups = 0

    def call_soon_threadsafe(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> asyncio.Handle:
        if (
            threading.current_thread() is not self.owner
            and not threading.current_thread().name.startswith("asyncio")
        ):
            self.wake_ups += 1
        return super().call_soon_threadsafe(*args, **kwargs)


def _run(loop: _CountingLoop, scenario: Any) -> Any:
    try:
        return loop.run_until_complete(scenario)
    finally:
        loop.close()


def test_the_bus_wakes_a_watcher_once_per_batch() -> None:
    bus = InProcessBus()
    loop = _CountingLoop()

    async def scenario() -> list[dict[str, Any]]:
        with bus.subscribe() as subscription:
            publisher = threading.Thread(target=bus.publish, args=([{"n": n} for n in range(100)],))
            publisher.start()
            await asyncio.to_thread(publisher.join)
            return [await subscription.get() for _ in range(100)]

    received = _run(loop, scenario())
    assert received == [{"n": n} for n in range(100)]
    assert loop.wake_ups == 1


def test_the_bus_wakes_a_loop_once_for_many_watchers_and_publishes() -> None:
    """50 pages on one loop, 20 batches published while the loop is busy: one wake-up, and
    every watcher gets every message in order (issue 18, item 10)."""
    bus = InProcessBus()
    loop = _CountingLoop()

    def publish_all() -> None:
        for batch in range(20):
            bus.publish([{"batch": batch, "n": n} for n in range(5)])

    async def scenario() -> list[list[dict[str, Any]]]:
        with ExitStack() as stack:
            watchers = [stack.enter_context(bus.subscribe()) for _ in range(50)]
            publisher = threading.Thread(target=publish_all)
            publisher.start()
            publisher.join()  # the loop is blocked meanwhile: the hand-offs must gather
            return [await watcher.get_batch() for watcher in watchers]

    received = _run(loop, scenario())
    expected = [{"batch": b, "n": n} for b in range(20) for n in range(5)]
    assert received == [expected] * 50
    assert loop.wake_ups == 1


def test_a_watcher_that_falls_behind_gets_a_resync_and_the_newest_changes() -> None:
    bus = InProcessBus(queue_size=10)
    loop = _CountingLoop()

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        with bus.subscribe() as slow, bus.subscribe() as keeping_up:
            for n in range(8):
                bus.publish([{"n": n}])
            await asyncio.sleep(0)
            first = await keeping_up.get_batch()
            for n in range(8, 16):
                bus.publish([{"n": n}])
            await asyncio.sleep(0)
            return first + await keeping_up.get_batch(), await slow.get_batch()

    whole, behind = _run(loop, scenario())
    assert whole == [{"n": n} for n in range(16)]
    assert behind[0] == RESYNC
    assert behind[-1] == {"n": 15}
    assert len(behind) < 16
