"""One SQLite writer at a time per database file in this process, waiting on a Python lock.

SQLite allows one writer; the others wait in its busy handler, which *sleeps* between retries
(1, 2, 5, 10, ... up to 100 ms each), so under concurrent writes the unlucky request waits
hundreds of milliseconds although the writer ahead of it needed well under one. Writers of this
process queue on a lock instead and go the moment the previous one commits; the busy handler
(busy_timeout) remains for writers in other processes.

The lock is taken at the first write statement of a transaction (where SQLite itself takes its
write lock: pysqlite begins the transaction there) and released when the transaction ends, or
at the latest when the connection goes back to the pool.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, event

_WRITE_KEYWORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_HOLDS = "callcenter_sqlite_write_lock"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def serialise_writes(engine: Engine, path: str) -> None:
    """Make ``engine``'s writers to the SQLite file at ``path`` take turns on a process lock."""
    lock = _lock_for(path)

    def release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS, False):
            lock.release()

    @event.listens_for(engine, "before_cursor_execute")
    def _take(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not conn.info.get(_HOLDS) and statement.lstrip()[:7].upper().startswith(_WRITE_KEYWORDS):
            lock.acquire()
            conn.info[_HOLDS] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _transaction_ends(conn: Any) -> None:
        release(conn.info)

    @event.listens_for(engine, "checkin")
    def _back_in_pool(_dbapi_connection: Any, record: Any) -> None:
        release(record.info)
