"""The faults the soak injects in turn, one per interval, each a function that returns what it
did (one line for the report)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.soak.backend import Backend
from benchmarks.soak.postgres import OwnPostgres
from callcenter.db import make_engine

KINDS = ("ami-cut", "kill-9", "postgres-restart", "disk-full", "garbage")


@dataclass
class Target:
    pbx: Any  # the multiprocessing connection to the PBX process
    backend: Backend
    postgres: OwnPostgres | None
    database_url: str
    spool: Path
    spool_is_small_fs: bool
    outage_seconds: float
    memory: list[tuple[float, int, float, str]]  # (seconds, pid, RSS MiB, when)
    started: float


def ask(target: Target, command: str) -> Any:
    return ask_pbx(target.pbx, command)


def ask_pbx(pbx: Any, command: str) -> Any:
    pbx.send(command)
    return pbx.recv()


def ami_cut(target: Target) -> str:
    cut = ask(target, "cut")
    return "AMI connection cut by the network" if cut else "AMI cut: no connection to cut"


def kill_9(target: Target) -> str:
    backend = target.backend
    target.memory.append(
        (time.monotonic() - target.started, backend.pid, backend.rss(), "before kill -9")
    )
    old = backend.pid
    backend.kill()
    started = time.monotonic()
    backend.start()
    return f"backend kill -9 (pid {old}), restarted in {time.monotonic() - started:.1f} s"


@contextlib.contextmanager
def database_down(target: Target) -> Any:
    """PostgreSQL stopped; SQLite held under an exclusive lock (a writer that never ends)."""
    if target.postgres is not None:
        target.postgres.stop("fast")
        try:
            yield
        finally:
            target.postgres.resume()
        return
    engine = make_engine(target.database_url)
    connection = engine.connect()
    connection.exec_driver_sql("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


def postgres_restart(target: Target) -> str:
    if target.postgres is None:
        return "PostgreSQL restart skipped: the soak runs on SQLite"
    with database_down(target):
        time.sleep(target.outage_seconds)
    return f"PostgreSQL stopped (fast) for {target.outage_seconds:.0f} s and started again"


def disk_full(target: Target) -> str:
    """The spool's file system full while the database is away: the listener cannot spool."""
    if not target.spool_is_small_fs:
        return "disk full skipped: no small file system for the spool (mount needs root)"
    filler = target.spool / ".soak-filler"
    written = _fill(filler)
    try:
        with database_down(target):
            time.sleep(target.outage_seconds)
    finally:
        filler.unlink(missing_ok=True)
    what = "PostgreSQL stopped" if target.postgres is not None else "SQLite locked"
    return (
        f"spool disk full ({written / 2**20:.0f} MiB filler) with {what} for "
        f"{target.outage_seconds:.0f} s"
    )


def _fill(path: Path) -> int:
    written = 0
    block = b"\0" * (1 << 20)
    with path.open("wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
                written += len(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        with contextlib.suppress(OSError):
            os.fsync(out.fileno())
    return written


def garbage(target: Target) -> str:
    ask(target, "garbage")
    return "garbage and oversized frames sent on the AMI stream (one 5 MiB, one 1 MiB)"


FAULTS: dict[str, Callable[[Target], str]] = {
    "ami-cut": ami_cut,
    "kill-9": kill_9,
    "postgres-restart": postgres_restart,
    "disk-full": disk_full,
    "garbage": garbage,
}


def mount_small_fs(folder: Path, size_mib: int) -> bool:
    """A tmpfs of its own for the spool (so it can be filled); False where we cannot mount."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True, check=False)
