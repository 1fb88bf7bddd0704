"""Brings the rollups up to date on a thread of its own, once for every reader waiting.

A statistics request used to refresh the rollups itself, inside its request's session: on
SQLite the refresh's first write took the process-wide write lock on one worker thread, and the
commit that released it ran in a later hop on another, so with enough readers every worker
thread waited on the lock (or for a pooled connection) and the holder never got a thread to
commit on: operators' tags and the AMI listener stalled behind statistics readers.

Here one thread refreshes, in transactions that it begins and commits itself (on SQLite it
reads without the write lock, then takes it only to write what it found: rollup.
refresh_in_snapshot), and a reader only waits, without a worker thread or a connection, for a
refresh that began after it asked: figures are never older than the request. Readers who ask
while a refresh runs share the next one. Each refresh has a number (its generation), which
``fresh()`` returns: readers served by the same refresh may share what they compute after it
(stats.shared).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import Engine

from callcenter.stats import rollup

log = logging.getLogger(__name__)


# After a refresh that rebuilt something, the next begins no sooner than this many seconds
# later. With the listener changing calls all the time each refresh rebuilds today; back to back
# they would hold SQLite's write lock most of the time, and operators' tags would wait behind
# them. A reader waits at most this long more. After a refresh that found nothing to rebuild
# there is no such pressure, and the next begins at once: a supervisor reading page after page
# of a quiet line waits only for the check that nothing changed.
MIN_INTERVAL_S = 0.5


class RollupRefresher:
    """One refreshing thread; ``await fresh()`` returns once the rollups include every commit
    made before it was called, with the generation of the refresh that did it (1, 2, ...)."""

    def __init__(self, engine: Engine, *, timezone: str, safety: timedelta) -> None:
        self._engine = engine
        self._timezone = timezone
        self._safety = safety
        self._wake = threading.Condition()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = []
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="rollup-refresh", daemon=True)
        self._thread.start()

    async def fresh(self) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the rollup refresher has stopped")
            self._waiting.append((loop, future))
            self._wake.notify()
        return await future

    def refresh_once(self) -> int:
        """One refresh in a transaction of its own (on the calling thread)."""
        return rollup.refresh_in_snapshot(
            self._engine, timezone=self._timezone, safety=self._safety
        )

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _serve(self) -> None:
        began = -MIN_INTERVAL_S
        rebuilt = 0  # days the last refresh rebuilt
        generation = 0
        while True:
            with self._wake:
                while not self._waiting and not self._closed:
                    self._wake.wait()
                if not self._waiting and self._closed:
                    return
                # Readers who ask meanwhile join this refresh; a close cuts the pause short.
                pause = began + MIN_INTERVAL_S - time.monotonic() if rebuilt else 0.0
                if pause > 0 and not self._closed:
                    self._wake.wait_for(lambda: self._closed, pause)
            with self._wake:
                # Everyone who asked before this refresh begins is served by it.
                batch, self._waiting = self._waiting, []
            began = time.monotonic()
            generation += 1
            error: BaseException | None = None
            try:
                rebuilt = self.refresh_once()
            except Exception as exc:  # handed to each waiting request, which answers with it
                log.exception("refreshing the statistics rollups failed")
                error, rebuilt = exc, 1  # no retry at once against a failing database
            for loop, future in batch:
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                    loop.call_soon_threadsafe(_settle, future, generation, error)


def _settle(future: asyncio.Future[int], generation: int, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled
        return
    if error is None:
        future.set_result(generation)
    else:
        future.set_exception(error)
