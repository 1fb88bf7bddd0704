"""IVR runs the database could not take, kept on disk until it can: nothing is lost.

The caller is served either way; what waits here is the record of what the IVR did for them
(the prank flag, the priority, the look-up), which the call's history and the IVR statistics
read. One small JSON file per run, written whole (a temporary file, then a rename). The next run
that is recorded drains the folder. Recording is insert-only per call (ivr.store), so a file
that two sessions drain at once is stored once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from callcenter.ivr.flow import CallerFlag, Outcome
from callcenter.ivr.session import RunFacts
from callcenter.ivr.store import record_run

log = logging.getLogger(__name__)

FOLDER = "ivr-pending"  # under the data folder
# The database is away: the run waits (any other error would fail the same way again).
UNAVAILABLE = (OperationalError, InterfaceError)
_draining = threading.Lock()  # one drain at a time in a process


def keep(folder: Path, facts: RunFacts) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = dataclasses.asdict(facts)
    for name in ("started_at", "ended_at"):
        data[name] = data[name].isoformat() if data[name] is not None else None
    data["flag"] = facts.flag.value if facts.flag else None
    data["outcome"] = facts.outcome.value
    path = folder / f"{facts.started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.json"
    partial = path.with_suffix(".part")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)
    return path


def read(path: Path) -> RunFacts:
    data: dict[str, Any] = json.loads(path.read_text())
    for name in ("started_at", "ended_at"):
        if data[name] is not None:
            data[name] = datetime.fromisoformat(data[name])
    data["flag"] = CallerFlag(data["flag"]) if data["flag"] else None
    data["outcome"] = Outcome(data["outcome"])
    return RunFacts(**data)


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
            except (OSError, ValueError, TypeError, KeyError) as exc:
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
