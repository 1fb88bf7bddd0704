"""A bounded on-disk spool: batches wait here while the database is down, drained in order.

One file per batch, named by a sequence number, written atomically (temp file, then rename), so
a crash leaves whole batches only. The bound is in bytes: when it is reached, a batch keeps its
call states (small; they are what makes a call row) and drops its raw events, and says so loudly.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from callcenter.ami.frames import Frame
from callcenter.ami.store import Batch, StoredEvent
from callcenter.ami.tracker import CallState

log = logging.getLogger(__name__)


def encode_batch(batch: Batch, *, with_events: bool = True) -> bytes:
    data: dict[str, Any] = {
        "events": [
            [
                base64.b64encode(e.frame.raw).decode(),
                e.frame.headers,
                e.event_time.isoformat(),
                e.received_at.isoformat(),
                e.call_uniqueid,
            ]
            for e in (batch.events if with_events else [])
        ],
        "calls": [state.snapshot() for state in batch.calls.values()],
    }
    return json.dumps(data).encode()


def decode_batch(payload: bytes) -> Batch:
    data = json.loads(payload)
    batch = Batch()
    for raw, headers, when, received, uniqueid in data["events"]:
        batch.events.append(
            StoredEvent(
                frame=Frame([(k, v) for k, v in headers], raw=base64.b64decode(raw)),
                event_time=datetime.fromisoformat(when),
                received_at=datetime.fromisoformat(received),
                call_uniqueid=uniqueid,
            )
        )
    for snapshot in data["calls"]:
        state = CallState.from_snapshot(snapshot)
        batch.calls[state.uniqueid] = state
    return batch


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        existing = self._files()
        self._next = int(existing[-1].stem) + 1 if existing else 1
        self.size = sum(f.stat().st_size for f in existing)
        # Counted, not listed: the listener asks on every idle tick.
        self._count = len(existing)

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.batch"), key=lambda p: int(p.stem))

    def __len__(self) -> int:
        return self._count

    def append(self, batch: Batch) -> None:
        payload = encode_batch(batch)
        if self.size + len(payload) > self.max_bytes:
            payload = encode_batch(batch, with_events=False)
            log.error(
                "spool full (%d bytes): kept %d call states, dropped %d raw events",
                self.size,
                len(batch.calls),
                len(batch.events),
            )
        path = self.directory / f"{self._next:012d}.batch"
        temp = path.with_suffix(".tmp")
        with temp.open("wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        temp.rename(path)
        self._count += 1
        self._next += 1
        self.size += len(payload)

    def pending(self) -> Iterator[tuple[Path, Batch]]:
        """Spooled batches, oldest first; call :meth:`done` after each is stored."""
        files = self._files()
        self._count = len(files)  # what is really there, whatever happened meanwhile
        for path in files:
            yield path, decode_batch(path.read_bytes())

    def done(self, path: Path) -> None:
        self.size -= path.stat().st_size
        path.unlink()
        self._count = max(0, self._count - 1)
