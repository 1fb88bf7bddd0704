"""A bounded on-disk spool: batches wait here while the database is down, drained in order.

One file per entry, named by a sequence number, written atomically (temp file, then rename), so
a crash leaves whole entries only. An entry is a batch (``.batch``: what the tracker made of
the frames, to be written) or reads (``.reads``: the frames as read, not yet tracked, kept
while a listener that started without its database cannot resume its open calls). The bound is
in bytes: when it is reached, a batch keeps its call states (small; they are what makes a call
row) and drops its raw events, and says so loudly; reads are kept whole. A file that cannot be
read back is moved aside (``.corrupt``) with an error, and the rest is drained.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from callcenter.ami.batch import Batch, StoredEvent
from callcenter.ami.call_state import CallState
from callcenter.ami.frames import Frame

log = logging.getLogger(__name__)

# What the AMI reader handed on, in order: the bytes of each frame of one read and when it
# arrived, or None where the connection was lost.
Read: TypeAlias = tuple[list[bytes], datetime] | None


def encode_batch(batch: Batch, *, with_events: bool = True) -> bytes:
    data: dict[str, Any] = {
        "events": [
            [
                base64.b64encode(e.frame.raw).decode(),
                e.frame.headers,
                e.event_time.isoformat(),
                e.received_at.isoformat(),
                e.call_uniqueid,
                e.dedup_key,
            ]
            for e in (batch.events if with_events else [])
        ],
        "calls": [state.snapshot() for state in batch.calls.values()],
    }
    return json.dumps(data).encode()


def decode_batch(payload: bytes) -> Batch:
    data = json.loads(payload)
    batch = Batch()
    for raw, headers, when, received, uniqueid, *key in data["events"]:
        batch.events.append(
            StoredEvent(
                frame=Frame([(k, v) for k, v in headers], raw=base64.b64decode(raw)),
                event_time=datetime.fromisoformat(when),
                received_at=datetime.fromisoformat(received),
                call_uniqueid=uniqueid,
                dedup_key=key[0] if key else "",  # spooled before keys were numbered
            )
        )
    for snapshot in data["calls"]:
        state = CallState.from_snapshot(snapshot)
        batch.calls[state.uniqueid] = state
    return batch


def encode_reads(reads: list[Read]) -> bytes:
    return json.dumps(
        [
            None
            if read is None
            else [[base64.b64encode(b).decode() for b in read[0]], read[1].isoformat()]
            for read in reads
        ]
    ).encode()


def decode_reads(payload: bytes) -> list[Read]:
    return [
        None
        if item is None
        else ([base64.b64decode(b) for b in item[0]], datetime.fromisoformat(item[1]))
        for item in json.loads(payload)
    ]


def _order(path: Path) -> tuple[int, bool]:
    # A batch made from reads is written before the reads are removed: it goes first.
    return int(path.stem), path.suffix != ".batch"


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.corrupt_files = 0
        directory.mkdir(parents=True, exist_ok=True)
        for temp in directory.glob("*.tmp"):  # a write a crash interrupted: never renamed
            temp.unlink()
        existing = self._files()
        self._next = int(existing[-1].stem) + 1 if existing else 1
        self.size = sum(f.stat().st_size for f in existing)
        # Counted, not listed: the listener asks on every idle tick.
        self._count = len(existing)

    def _files(self) -> list[Path]:
        try:
            files = [p for p in self.directory.iterdir() if p.suffix in (".batch", ".reads")]
        except OSError as exc:  # the directory is gone or unreadable: nothing to drain now
            log.error("spool directory %s cannot be read: %s", self.directory, exc)
            return []
        return sorted((p for p in files if p.stem.isdigit()), key=_order)

    def __len__(self) -> int:
        return self._count

    def append(self, batch: Batch) -> None:
        """Raises OSError when the disk refuses (full, read-only): nothing is then written."""
        payload = encode_batch(batch)
        if self.size + len(payload) > self.max_bytes:
            payload = encode_batch(batch, with_events=False)
            log.error(
                "spool full (%d bytes): kept %d call states, dropped %d raw events",
                self.size,
                len(batch.calls),
                len(batch.events),
            )
        self._write(self.directory / f"{self._next:012d}.batch", payload)
        self._next += 1

    def append_reads(self, reads: list[Read]) -> None:
        """Frames not yet tracked, kept whole whatever the bound (they make the call rows)."""
        self._write(self.directory / f"{self._next:012d}.reads", encode_reads(reads))
        self._next += 1

    def _write(self, path: Path, payload: bytes) -> None:
        temp = path.with_suffix(".tmp")
        try:
            with temp.open("wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            temp.rename(path)
        except OSError:
            temp.unlink(missing_ok=True)
            raise
        self.size += len(payload)
        self._count += 1

    def pending(self) -> Iterator[tuple[Path, Batch | list[Read]]]:
        """Spooled entries, oldest first; call :meth:`done` after each is stored. A file that
        cannot be decoded is moved aside and skipped."""
        files = self._files()
        self._count = len(files)  # what is really there, whatever happened meanwhile
        for path in files:
            try:
                payload = path.read_bytes()
                entry = decode_reads(payload) if path.suffix == ".reads" else decode_batch(payload)
            except FileNotFoundError:
                continue
            except Exception as exc:  # any decoding failure: the file is not what we wrote
                self._set_aside(path, exc)
                continue
            yield path, entry

    def replace(self, path: Path, batch: Batch) -> Path:
        """Put the batch made from a reads entry in its place, in the same order."""
        target = path.with_suffix(".batch")
        self._write(target, encode_batch(batch))
        self.done(path)
        return target

    def done(self, path: Path) -> None:
        self.size -= path.stat().st_size
        path.unlink()
        self._count = max(0, self._count - 1)

    def _set_aside(self, path: Path, exc: Exception) -> None:
        aside = path.with_suffix(path.suffix + ".corrupt")
        self.corrupt_files += 1
        self.size -= path.stat().st_size
        path.rename(aside)
        self._count = max(0, self._count - 1)
        log.error(
            "spool file %s cannot be read (%s: %s): moved aside as %s, the rest is drained",
            path.name,
            type(exc).__name__,
            str(exc)[:200],
            aside.name,
        )
