"""The caller look-up: how often was this number tagged prank lately? Bounded by a deadline.

`ThreadLookup(...)` (process AGI) and `PoolLookup(...)` (FastAGI server) return at once; the
query runs in another thread while the greeting plays, and `result(timeout)` never waits longer
than the IVR's deadline. A look-up past it, or
one that fails (database down, schema missing), is a miss: the caller is queued at normal
priority.
The thread is a daemon so a query stuck on a dead database cannot keep the process alive.

SQLAlchemy, phonenumbers and the models load inside the thread: process AGI start-up
(exec to ANSWER) does not wait for them.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import TYPE_CHECKING

from callcenter.ivr.flow import LookupResult
from callcenter.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


class ThreadLookup:
    """A look-up running in its own thread; `result` waits at most `timeout` seconds for it.

    For a process AGI, which runs one call and exits.
    """

    def __init__(self, caller_raw: str, settings: Settings, engine: Engine | None = None) -> None:
        self._done = threading.Event()
        self._result = LookupResult.miss("not finished")
        started = time.monotonic()

        def run() -> None:
            try:
                self._result = look_up(caller_raw, settings, engine, started)
            finally:
                self._done.set()

        threading.Thread(target=run, name="ivr-lookup", daemon=True).start()

    def result(self, timeout: float) -> LookupResult:
        if self._done.wait(timeout):
            return self._result
        return _past_deadline(timeout)


class PoolLookup:
    """A look-up on a shared, bounded pool of threads and database connections (FastAGI).

    A burst of callers queues here rather than opening a connection each; a look-up that waits
    too long in that queue is a miss like any other past its deadline.
    """

    def __init__(self, caller_raw: str, settings: Settings, engine: Engine, pool: Executor) -> None:
        self._future = pool.submit(look_up, caller_raw, settings, engine, time.monotonic())

    def result(self, timeout: float) -> LookupResult:
        try:
            return self._future.result(timeout)
        except FutureTimeout:
            return _past_deadline(timeout)


def _past_deadline(timeout: float) -> LookupResult:
    return LookupResult.miss(f"deadline: no answer within {timeout * 1000:.0f} ms")


def look_up(
    caller_raw: str, settings: Settings, engine: Engine | None, started: float
) -> LookupResult:
    """The look-up as a result; never raises (any driver or schema error is a miss)."""

    def elapsed_ms() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        e164, count = count_recent_pranks(caller_raw, settings, engine)
    except Exception as exc:  # a miss, never a failed call
        first_line = str(exc).splitlines()[0][:160] if str(exc) else ""
        return LookupResult.miss(
            f"error: {type(exc).__name__}: {first_line}", elapsed_ms=elapsed_ms()
        )
    if e164 is None:
        return LookupResult.withheld()
    return LookupResult.found(e164, prank_count=count, elapsed_ms=elapsed_ms())


def count_recent_pranks(
    caller_raw: str, settings: Settings, engine: Engine | None = None
) -> tuple[str | None, int]:
    """(E.164, calls tagged prank within the window); (None, 0) when there is no number."""
    from sqlalchemy import func, select

    from callcenter.db import utcnow
    from callcenter.models import Call, Classification
    from callcenter.phone import normalise

    number = normalise(caller_raw, settings.phone_region, place=False)
    if number.e164 is None:  # withheld, short code or malformed: queued normally
        return None, 0
    own_engine = engine is None
    if engine is None:
        engine = lookup_engine(settings.resolved_database_url)
    try:
        since = utcnow() - timedelta(days=settings.ivr.prank_window_days)
        query = (
            select(func.count())
            .select_from(Call)
            .where(
                Call.caller_e164 == number.e164,
                Call.classification == Classification.prank,
                Call.started_at >= since,
            )
        )
        with engine.connect() as connection:
            return number.e164, int(connection.execute(query).scalar_one())
    finally:
        if own_engine:
            engine.dispose()


def lookup_engine(url: str) -> Engine:
    """An engine for one short-lived IVR process: no pool kept open, a bounded connect."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from callcenter.db import make_engine

    if make_url(url).get_backend_name() == "postgresql":
        return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})
    return make_engine(url, poolclass=NullPool)


def server_engine(url: str, connections: int) -> Engine:
    """An engine for a long-running FastAGI server: at most `connections` open, a bounded
    connect, and a short wait for a free connection (a look-up past its deadline is a miss
    anyway; a recording waits its turn on its own thread)."""
    from sqlalchemy.engine import make_url

    from callcenter.db import make_engine

    if make_url(url).get_backend_name() == "postgresql":
        return make_engine(
            url,
            pool_size=connections,
            max_overflow=0,
            pool_timeout=10,
            connect_args={"connect_timeout": 3},
        )
    return make_engine(url, pool_size=connections, max_overflow=0, pool_timeout=10)
