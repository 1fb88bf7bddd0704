"""The pool's liveness check on a PostgreSQL connection, made only when the connection sat
unused in the pool for a while.

``pool_pre_ping`` checks every connection it hands out, a round trip each time: for the AMI
listener that was one more wait in every batch's write (a batch every 50 ms in a surge), and on
a loaded machine every round trip is a wait for the server to be scheduled. A connection handed
back a moment ago is as alive as a ping would show; one that sat idle (a database restarted, an
idle connection cut by the network) is checked as before, and replaced when it is dead, so the
batch that finds it is written rather than spooled.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

IDLE_SECONDS = 1.0


def ping_when_idle(engine: Engine, idle_seconds: float = IDLE_SECONDS) -> None:
    """For an engine made with ``pool_pre_ping=False``."""
    dialect = engine.dialect

    def checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc  # the pool connects anew
            raise

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)
