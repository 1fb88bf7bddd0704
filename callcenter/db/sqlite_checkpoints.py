"""SQLite WAL checkpoints on a thread of their own, off a busy writer's commits.

In WAL mode with ``synchronous=NORMAL`` a commit appends to the WAL file and does not wait for
the disk. The checkpoint, which copies the WAL back into the database file and syncs it, is what
waits, and by default SQLite runs it inside whichever commit takes the WAL past 1,000 pages. For
the AMI listener that was every other batch, ~18 ms each, about a seventh of its time. Python's
sqlite3 releases the GIL while SQLite works, so a checkpoint on another thread runs on the other
core while the listener goes on parsing.

The writer's connections stop checkpointing (``wal_autocheckpoint=0``, set at each checkout);
every other connection, such as the API's, keeps SQLite's default. A PASSIVE checkpoint never
waits for readers or writers, so this thread cannot hold anyone up.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, event

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Checkpoints the engine's database file every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, *, interval: float = 0.2) -> None:
        if not self.applies_to(engine):
            raise ValueError("WAL checkpoints are for an SQLite database file")
        assert engine.url.database is not None
        self.database = engine.url.database
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        event.listen(engine, "checkout", _no_autocheckpoint)
        self._engine = engine

    @staticmethod
    def applies_to(engine: Engine) -> bool:
        """An SQLite database file (in memory there is no WAL to checkpoint)."""
        database = engine.url.database
        return engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        event.remove(self._engine, "checkout", _no_autocheckpoint)

    def _run(self) -> None:
        connection = sqlite3.connect(self.database, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval):
                self.checkpoint(connection)
            self.checkpoint(connection)  # what the last commits left
        finally:
            connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
        except sqlite3.Error as exc:  # a locked or missing file: the next round tries again
            log.warning("SQLite checkpoint failed (%s)", exc)


def _no_autocheckpoint(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
