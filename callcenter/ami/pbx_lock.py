"""One listener per PBX: a second `serve` or `ami` for the same PBX refuses to start.

Two listeners of one PBX would both write every call. Each takes, for the life of the process:
- a file lock (``flock``) on ``<data_dir>/ami-<pbx>.lock``: two on one host, any database;
- on PostgreSQL, a session advisory lock named after the PBX, on a connection of its own:
  two on different hosts sharing the database.
The kernel and PostgreSQL drop both when the process ends, however it ends (kill -9 too).
A PostgreSQL that cannot be reached at start-up is not a reason to refuse: the listener spools
until the database returns, and the file lock still guards this host.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any

from callcenter.settings import Settings

log = logging.getLogger(__name__)


class PbxLockHeld(Exception):
    """Another listener holds the PBX."""


class PbxLock:
    def __init__(self, settings: Settings) -> None:
        self.pbx = settings.ami.pbx_name
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", self.pbx)
        self.path = Path(settings.data_dir) / f"ami-{safe}.lock"
        self.url = settings.resolved_database_url
        self._fd: int | None = None
        self._connection: Any = None

    def acquire(self) -> None:
        """Take both locks or raise PbxLockHeld with one clear line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PbxLockHeld(
                f"another AMI listener for PBX {self.pbx!r} is running on this host "
                f"(it holds {self.path}): stop it first, or give this one its own "
                "CALLCENTER_AMI__PBX_NAME"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        try:
            self._advisory_lock()
        except BaseException:
            self.release()
            raise

    def _advisory_lock(self) -> None:
        if not self.url.startswith("postgresql"):
            return
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        try:
            connection = psycopg.connect(dsn, connect_timeout=3, autocommit=True)
        except psycopg.Error as exc:
            log.warning(
                "cannot check for another listener of PBX %r on the database (%s): "
                "going on with the local lock only",
                self.pbx,
                type(exc).__name__,
            )
            return
        key = int.from_bytes(
            hashlib.blake2b(f"ami:{self.pbx}".encode(), digest_size=8).digest(), "big", signed=True
        )
        row = connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if not (row and row[0]):
            connection.close()
            raise PbxLockHeld(
                f"another AMI listener for PBX {self.pbx!r} is writing to this database "
                "(PostgreSQL advisory lock held): stop it first, or give this one its own "
                "CALLCENTER_AMI__PBX_NAME"
            )
        self._connection = connection

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
