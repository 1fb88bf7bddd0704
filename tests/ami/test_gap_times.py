"""A gap after a later reconnect starts when that connection was lost, not at start-up
(issue 18, item 6): the start-up resume time served the first reconcile only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording
from callcenter.db import make_engine, make_sessionmaker
from callcenter.models import Call
from tests.ami.helpers import make_listener, replay, wait_for, wall_clock
from tests.conftest import TRACES

CONCURRENT = TRACES / "13-combined-concurrent"
# Started after the restart, ended while the second connection was down (expected.json).
ENDED_IN_THE_LATER_GAP = ("1795828846.83", "1795828848.87")


def test_calls_closed_in_a_later_gap_get_that_gaps_start(database_url: str, tmp_path: Path) -> None:
    recorded = Recording.load(CONCURRENT, stamp=True).frames
    timed = [(c.at, c) for c in recorded if c.at is not None]
    # A first listener hears the first call begin, then stops: the call is left open.
    replay(database_url, [[c for at, c in timed if at < 1.5]], tmp_path / "first")

    before = [c for at, c in timed if 1.5 <= at < 10]
    lost = [c for at, c in timed if 10 <= at < 30]
    after = [Chunk(c.data) for at, c in timed if at >= 30]
    # All at once but the last frame, a second later: the start-up reconcile is answered
    # before the fake Asterisk plays what happens during the later gap.
    before = [
        Chunk(c.data, 0.0 if n == 0 else 1.0 if n == len(before) - 1 else None)
        for n, c in enumerate(before)
    ]
    with FakeAsterisk([before, after], skipped=[lost], close_at_end=False, realtime=True) as fake:
        # The restarted listener resumes the open call (its start-up gap) ...
        listener, store = make_listener(database_url, fake.port, tmp_path / "spool")
        listener.start()
        wait_for(fake.finished.is_set, "the second connection's stream sent")
        # ... and later loses its connection from 10 s to 30 s.
        wait_for(
            lambda: all(u in listener.tracker.finished for u in ENDED_IN_THE_LATER_GAP),
            "the later gap reconciled",
        )
        listener.stop()
        store.engine.dispose()

    clock = wall_clock(CONCURRENT)
    last_before_cut = max(at for at, _ in timed if at < 10)
    gap_began = datetime.fromtimestamp(
        max(t for rel, t in clock.items() if rel <= last_before_cut), UTC
    )
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        calls = session.scalars(select(Call).where(Call.uniqueid.in_(ENDED_IN_THE_LATER_GAP)))
        closed = {c.uniqueid: (c.gap, c.started_at, c.gap_started_at) for c in calls}
    engine.dispose()
    assert sorted(closed) == sorted(ENDED_IN_THE_LATER_GAP)
    for uniqueid, (gap, started_at, gap_started_at) in closed.items():
        assert gap, uniqueid
        assert gap_started_at is not None
        assert gap_started_at >= started_at, uniqueid
        assert abs((gap_started_at - gap_began).total_seconds()) < 0.05, (uniqueid, gap_began)
