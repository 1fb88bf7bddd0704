"""One SQLite writer at a time per database file, waiting on a lock instead of in SQLite.

SQLite allows one writer; the others wait in its busy handler, which *sleeps* between retries
(1, 2, 5, 10, ... up to 100 ms each), so under concurrent writes the unlucky request waits
hundreds of milliseconds although the writer ahead of it needed well under one. Writers queue on
a lock instead and go the moment the previous one commits: the threads of one process on a
``threading.Lock``, the processes (API workers, the listener, IVR runs) on ``flock`` of a file
beside the database. The busy handler (busy_timeout) remains for writers that do not use this
module, such as the sqlite3 shell.

The lock is taken at the first write statement of a transaction (where SQLite itself takes its
write lock: pysqlite begins the transaction there) and released when the transaction ends, or
at the latest when the connection goes back to the pool.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from sqlalchemy import Engine, event

_WRITE_KEYWORDS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")
_HOLDS = "callcenter_sqlite_write_lock"


class WriteLock:
    """Exclusive across the threads of this process and across processes."""

    def __init__(self, database_path: str) -> None:
        self.file = f"{database_path}-writelock"
        self._threads = threading.Lock()
        self._fd: int | None = None  # opened at first use, once per process

    def acquire(self) -> None:
        self._threads.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without the GIL
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def locked(self) -> bool:
        """Whether a thread of this process holds it."""
        return self._threads.locked()

    def forget_parent(self) -> None:
        """In a forked child: the parent's threads and its open lock file are not ours."""
        self._threads = threading.Lock()
        if self._fd is not None:
            # The child's copy would otherwise keep the parent's flock alive after the parent.
            os.close(self._fd)
            self._fd = None


_locks: dict[str, WriteLock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: str) -> WriteLock:
    with _locks_guard:
        return _locks.setdefault(path, WriteLock(path))


def _after_fork_in_child() -> None:
    global _locks_guard
    _locks_guard = threading.Lock()
    for lock in _locks.values():
        lock.forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


def serialise_writes(engine: Engine, path: str) -> None:
    """Make ``engine``'s writers to the SQLite file at ``path`` take turns on a WriteLock."""
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
