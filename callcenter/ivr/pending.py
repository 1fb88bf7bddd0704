"""IVR runs the database could not take, kept on disk until it can: nothing is lost.

The caller is served either way; what waits here is the record of what the IVR did for them
(the prank flag, the priority, the look-up), which the call's history and the IVR statistics
read. One small JSON file per run, written whole (a temporary file, then a rename). The next run
that is recorded drains the folder. Recording is insert-only per call (ivr.store), so a file
that two sessions drain at once is stored once.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path

from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from callcenter.ivr.session import RunFacts
from callcenter.ivr.store import record_run

log = logging.getLogger(__name__)

FOLDER = "ivr-pending"  # under the data folder
# The database is away: the run waits (any other error would fail the same way again).
UNAVAILABLE = (OperationalError, InterfaceError)
_draining = threading.Lock()  # one drain at a time in a process
_RUN = TypeAdapter(RunFacts)  # a run as JSON and back (datetimes, enums)


def keep(folder: Path, facts: RunFacts) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{facts.started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.json"
    partial = path.with_suffix(".part")
    partial.write_bytes(_RUN.dump_json(facts))
    os.replace(partial, path)
    return path


def read(path: Path) -> RunFacts:
    return _RUN.validate_json(path.read_bytes())


def waiting(folder: Path) -> list[Path]:
    """The runs waiting, oldest first."""
    try:
        return sorted(folder.glob("*.json"))
    except OSError:
        return []


def drain(folder: Path, engine: Engine) -> int:
    """Records the runs waiting in ``folder``; stops (keeping the rest) if the database goes
    away again. Returns how many were taken from the folder."""
    if not _draining.acquire(blocking=False):
        return 0  # another session of this process is draining
    taken = 0
    try:
        for path in waiting(folder):
            try:
                facts = read(path)
            except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                log.error("unreadable kept IVR run %s moved aside: %s", path.name, exc)
                path.rename(path.with_suffix(".corrupt"))
                continue
            try:
                record_run(engine, facts)
            except UNAVAILABLE:
                break
            except Exception as exc:  # refused for good: set aside, never retried in a loop
                log.error("kept IVR run %s refused, moved aside: %s", path.name, exc)
                path.rename(path.with_suffix(".rejected"))
                continue
            path.unlink(missing_ok=True)
            taken += 1
    finally:
        _draining.release()
    if taken:
        log.info("recorded %d IVR runs kept while the database was away", taken)
    return taken
