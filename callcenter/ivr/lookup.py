"""The caller look-up: how often was this number tagged prank lately? Bounded by a deadline.

`start()` returns at once; the query runs in a daemon thread while the greeting plays, and
`result(timeout)` never waits longer than the IVR's deadline. A look-up past it, or one that
fails (database down, schema missing), is a miss: the caller is queued at normal priority.
The thread is a daemon so a query stuck on a dead database cannot keep the process alive.

SQLAlchemy, phonenumbers and the models load inside the thread: process AGI start-up
(exec to ANSWER) does not wait for them.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from callcenter.ivr.flow import LookupResult
from callcenter.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


class ThreadLookup:
    """A look-up running in its own thread; `result` waits at most `timeout` seconds for it."""

    def __init__(self, caller_raw: str, settings: Settings, engine: Engine | None = None) -> None:
        self._done = threading.Event()
        self._result = LookupResult.miss("not finished")
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(caller_raw, settings, engine), name="ivr-lookup", daemon=True
        )
        self._thread.start()

    def result(self, timeout: float) -> LookupResult:
        if self._done.wait(timeout):
            return self._result
        return LookupResult.miss(f"deadline: no answer within {timeout * 1000:.0f} ms")

    def _elapsed_ms(self) -> int:
        return round((time.monotonic() - self._started) * 1000)

    def _run(self, caller_raw: str, settings: Settings, engine: Engine | None) -> None:
        try:
            e164, count = count_recent_pranks(caller_raw, settings, engine)
            if e164 is None:
                self._result = LookupResult.withheld()
            else:
                self._result = LookupResult.found(
                    e164, prank_count=count, elapsed_ms=self._elapsed_ms()
                )
        except Exception as exc:  # any driver or schema error is a miss, never a failed call
            first_line = str(exc).splitlines()[0][:160] if str(exc) else ""
            self._result = LookupResult.miss(
                f"error: {type(exc).__name__}: {first_line}", elapsed_ms=self._elapsed_ms()
            )
        finally:
            self._done.set()


def count_recent_pranks(
    caller_raw: str, settings: Settings, engine: Engine | None = None
) -> tuple[str | None, int]:
    """(E.164, calls tagged prank within the window); (None, 0) when there is no number."""
    from sqlalchemy import func, select

    from callcenter.db import utcnow
    from callcenter.models import Call, Classification
    from callcenter.phone import normalise

    number = normalise(caller_raw, settings.phone_region)
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
