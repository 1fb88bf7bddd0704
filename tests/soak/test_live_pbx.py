"""The soak's simulated PBX against the real listener: it goes on while nobody listens, answers
the lists after a reconnect from what happened meanwhile, and writes what reconcile needs."""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.soak.account import Accounting, stored_calls
from benchmarks.soak.calls import Played, load_templates, play
from benchmarks.soak.pbx import LivePbx, garbage
from callcenter.demo.feed import stamped
from tests.ami.helpers import PBX, make_listener, wait_for
from tests.soak.test_soak_accounting import reconcile_from_logs, record


def frames(played: Played, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(stamped(d, at) + b"\r\n\r\n" for at, d in played.events[start:end])


def test_calls_go_on_through_a_cut_and_reconcile_completes_them(
    database_url: str, tmp_path: Path
) -> None:
    templates = load_templates()
    start = time.time() - 600
    before, cut_short, after = (play(t, start + 60 * n) for n, t in enumerate(templates[:3]))
    half = len(cut_short.events) // 2
    pbx = LivePbx(username="backend112", secret="ttu112secret")
    pbx.start()
    listener, store = make_listener(database_url, pbx.port, tmp_path / "spool")
    listener.start()
    try:
        wait_for(lambda: pbx.connected, "the listener logged in")
        pbx.emit(frames(before) + frames(cut_short, 0, half) + garbage())
        wait_for(lambda: listener.tracker.calls.keys() == set(cut_short.outcomes), "read")
        assert pbx.cut()
        pbx.emit(frames(cut_short, half))  # while nobody listens
        wait_for(lambda: pbx.connections == 2 and pbx.connected, "the listener back")
        pbx.emit(frames(after))
        wait_for(lambda: listener.counters.gap_closed_calls == 1, "the gap reconciled")
        ended = {u for p in (before, cut_short, after) for u in p.outcomes}
        wait_for(lambda: ended <= {u for u, _ in stored_calls(database_url, PBX)}, "stored")
        wait_for(lambda: not listener.tracker.calls, "every call ended")
    finally:
        listener.stop()
        store.engine.dispose()
        pbx.stop()

    plays = [before, cut_short, after]
    assert any(("Action", "CoreShowChannels") in action for action in pbx.received)
    alone = Accounting.of(record(plays), stored_calls(database_url, PBX))
    assert (alone.generated, alone.lost, alone.duplicated) == (3, 0, 0)
    reconcile_from_logs(database_url, plays, tmp_path, since=start - 60)
    final = Accounting.of(record(plays), stored_calls(database_url, PBX))
    assert final.wrong == []
    assert final.ok
