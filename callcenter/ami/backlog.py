"""What waits for the database, in order: the spool on disk, then batches its disk refused.

The listener's consumer thread owns it. Batches go to the spool while the database is down and
are drained, oldest first, when it is back; a spool the disk refuses (full, gone) keeps them in
memory, in order, until it takes them again. Before the listener has resumed its open calls
(its database was down when it started), frames are kept as read (``unresumed``, then spooled
as reads) and tracked once it can: see :meth:`Backlog.resume`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from callcenter.ami.batch import Batch
from callcenter.ami.counters import Counters
from callcenter.ami.spool import Read, Spool
from callcenter.ami.store import StoreUnavailable

log = logging.getLogger(__name__)

# Batches held in memory while the spool's disk refuses them; past this, only call states.
MAX_HELD_BATCHES = 1000

Write = Callable[[Batch], None]


class Backlog:
    def __init__(
        self,
        spool: Spool,
        counters: Counters,
        *,
        write: Write,
        stored: Write,
        db_down: Callable[[Exception], None],
    ) -> None:
        self.spool = spool
        self.counters = counters
        self._write = write  # raises StoreUnavailable
        self._stored = stored
        self._db_down = db_down
        self.held: list[Batch] = []  # batches the spool's disk refused, oldest first
        self.unresumed: list[Read] = []  # reads waiting for the open calls, not yet spooled
        self.state = "ok"  # or why the spool cannot be written

    def waiting(self) -> bool:
        return bool(self.held) or len(self.spool) > 0

    def resume(
        self, load_open_calls: Callable[[], bool], take: Callable[[Read, Batch], None]
    ) -> bool:
        """In order: the spool's batches stored, the open calls loaded, then the spooled
        reads tracked (each batch stored, or put in the reads' place in the spool). False while
        the database is down: nothing is decided on an open call before its events are in."""
        loaded = False
        db_up = True
        for path, entry in self.spool.pending():
            if isinstance(entry, Batch):
                if not db_up:
                    continue
                try:
                    self._write(entry)
                except StoreUnavailable as exc:
                    self._db_down(exc)
                    if not loaded:
                        return False
                    db_up = False
                    continue
                self.spool.done(path)
                self._stored(entry)
                continue
            if not loaded:
                if not load_open_calls():
                    return False
                loaded = True
            batch = Batch()
            for read in entry:
                take(read, batch)
            db_up = self._store_tracked_reads(path, batch, db_up)
        self.counters.corrupt_spool_files = self.spool.corrupt_files
        return loaded or load_open_calls()

    def _store_tracked_reads(self, path: Path, batch: Batch, db_up: bool) -> bool:
        if db_up:
            try:
                self._write(batch)
            except StoreUnavailable as exc:
                self._db_down(exc)
                db_up = False
            else:
                self.spool.done(path)
                self._stored(batch)
                return True
        try:
            self.spool.replace(path, batch)
        except OSError as exc:
            self._failed(exc)
            self.held.append(batch)
            self.spool.done(path)
        return db_up

    def drain(self) -> bool:
        """The spool, then the batches held in memory, in order. False: the database is down."""
        for path, spooled in self.spool.pending():
            if not isinstance(spooled, Batch):  # never after resuming; kept for the next start
                continue
            try:
                self._write(spooled)
            except StoreUnavailable as exc:
                self._db_down(exc)
                return False
            self.spool.done(path)
            self._stored(spooled)
        self.counters.corrupt_spool_files = self.spool.corrupt_files
        while self.held:
            try:
                self._write(self.held[0])
            except StoreUnavailable as exc:
                self._db_down(exc)
                return False
            self._stored(self.held.pop(0))
        self.state = "ok"
        log.info("spool drained: the database is back")
        return True

    def add(self, batch: Batch) -> None:
        """To the disk, after any batch held in memory; held in memory if the disk refuses."""
        if batch:
            self.held.append(batch)
        while self.held:
            try:
                self.spool.append(self.held[0])
            except OSError as exc:
                self._failed(exc)
                self._cap_held()
                return
            self.held.pop(0)
            self.counters.spooled_batches += 1
        self.state = "ok"

    def spool_reads(self) -> None:
        if not self.unresumed:
            return
        try:
            self.spool.append_reads(self.unresumed)
        except OSError as exc:
            self._failed(exc)  # kept in memory, tried again at the next flush
            return
        self.unresumed = []
        self.counters.spooled_batches += 1
        self.state = "ok"

    def _failed(self, exc: OSError) -> None:
        state = f"spool cannot be written ({type(exc).__name__}: {exc}): held in memory"
        if self.state == "ok":
            log.error("AMI %s", state)
        # The state first: whoever sees the error counted (readiness, metrics) sees it too.
        self.state = state[:300]
        self.counters.spool_errors += 1

    def _cap_held(self) -> None:
        if len(self.held) <= MAX_HELD_BATCHES:
            return
        merged = Batch()
        for held in self.held:
            merged.calls.update(held.calls)
        dropped = sum(len(held.events) for held in self.held)
        log.error(
            "AMI spool unwritable and %d batches in memory: kept %d call states, dropped %d "
            "raw events",
            len(self.held),
            len(merged.calls),
            dropped,
        )
        self.held = [merged]
