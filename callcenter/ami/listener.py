"""The AMI listener: session -> bounded queue -> tracker -> batched store (or the spool).

Two threads. The connection thread logs in (pyst2), pings with a deadline, and on a lost
connection reconnects with backoff, a new session each time; after a reconnect it asks for
CoreShowChannels and QueueStatus. The consumer thread feeds frames to the tracker in wire order,
so those list replies are handled at exactly their place in the stream: an open call whose
channel is not in the list ended during the gap and is closed, marked gap. A full queue blocks
the reader (TCP backpressure) rather than dropping a frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from asterisk.manager import ManagerException

from callcenter.ami import lists
from callcenter.ami.client import ActionTimeout, AmiSession, AuthenticationFailed
from callcenter.ami.frames import Frame, log_junk, read_frame
from callcenter.ami.spool import Spool
from callcenter.ami.store import (
    Batch,
    CallStore,
    StoreRejected,
    StoreUnavailable,
)
from callcenter.ami.tracker import CallState, CallTracker, event_time
from callcenter.db import utcnow
from callcenter.settings import AmiSettings

log = logging.getLogger(__name__)

Publish = Callable[[list[CallState]], None]
_IDLE = object()
_LOST = object()  # in the queue at the place the connection was lost


@dataclass(slots=True)
class _Reconcile:
    gap_started_at: datetime | None
    alive: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Counters:
    frames: int = 0
    stored_events: int = 0
    batches: int = 0
    spooled_batches: int = 0
    connections: int = 0
    gap_closed_calls: int = 0
    junk_frames: int = 0  # frames with debris, or debris alone (logged, skipped)


class Listener:
    def __init__(
        self,
        settings: AmiSettings,
        store: CallStore,
        spool: Spool,
        *,
        publish: Publish | None = None,
        stop_at_eof: bool = False,
        queue_size: int = 256,  # reads of up to 64 KiB each
        batch_max: int = 2000,
        flush_interval: float = 0.05,
        db_retry_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.spool = spool
        self.publish = publish
        self.on_stored: Callable[[Batch], None] | None = None  # after each commit (benchmarks)
        self.stop_at_eof = stop_at_eof
        self.batch_max = batch_max
        self.flush_interval = flush_interval
        self.db_retry_seconds = db_retry_seconds
        self.tracker = CallTracker(
            inbound_context=settings.inbound_context,
            inbound_extensions=settings.inbound_extensions,
        )
        self.counters = Counters()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._stopping = threading.Event()
        self._reconciles: dict[str, _Reconcile] = {}
        self._queue_statuses: set[str] = set()  # ActionIDs of QueueStatus sent at reconnect
        self._session: AmiSession | None = None
        self._state = "starting"
        self._db_state = "ok"
        self._retry_db_at = 0.0
        self._threads: list[threading.Thread] = []
        self._resume_gap: datetime | None = None
        self._gap_started: datetime | None = None  # consumer thread only

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        try:
            open_calls = self.store.load_open_calls()
        except Exception as exc:  # the database may be down: the spool covers it
            log.warning("could not load open calls to resume (%s)", type(exc).__name__)
            open_calls = []
        if open_calls:
            self.tracker.resume(open_calls)
            self._resume_gap = max(c.last_event_at for c in open_calls)
            log.info("resuming %d open calls", len(open_calls))
        self.store.start()
        for target, name in ((self._consume, "ami-consumer"), (self._connect_loop, "ami-conn")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if not self._threads:
            return
        session = self._session
        if session is not None:
            session.close()
        self._threads[1].join(timeout)
        self._queue.put(None)
        self._threads[0].join(timeout)
        self.store.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the stream ends (stop_at_eof) and everything read is stored."""
        self._threads[1].join(timeout)
        if self._threads[1].is_alive():
            return False
        self._queue.put(None)
        self._threads[0].join(timeout)
        if self._threads[0].is_alive():
            return False
        self.store.close()
        return True

    def readiness(self) -> str:
        """ "ok", or why the listener is not doing its job (for /readyz)."""
        problems = [state for state in (self._state, self._db_state) if state != "ok"]
        return "; ".join(problems) or "ok"

    # -- connection -------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self._state:
            (log.info if state == "ok" else log.warning)("AMI: %s", state)
        self._state = state

    def _connect_loop(self) -> None:
        s = self.settings
        delay = s.reconnect_min_seconds
        reconcile = bool(self._resume_gap)
        where = f"{s.host}:{s.port}"
        while not self._stopping.is_set():
            lost = threading.Event()
            session = AmiSession(
                on_blocks=self._enqueue,
                action_timeout=s.ping_timeout_seconds,
                on_lost=_setter(lost),
            )
            try:
                session.connect(s.host, s.port, timeout=s.ping_timeout_seconds)
                log.info("AMI: connected to %s", where)
                session.login(s.username, s.secret.get_secret_value())
            except AuthenticationFailed as exc:
                session.close()
                self._set_state(
                    f"authentication failed at {where} ({exc}): check ami.username / ami.secret"
                )
            except (ManagerException, OSError) as exc:
                session.close()
                self._set_state(f"cannot reach Asterisk at {where}: {exc}")
            except Exception as exc:  # a bug must not end the listener: log it, reconnect
                session.close()
                log.exception("AMI: unexpected failure while connecting")
                self._set_state(f"listener error: {type(exc).__name__}")
            else:
                self.counters.connections += 1
                self._session = session
                self._set_state("ok")
                delay = s.reconnect_min_seconds
                if reconcile:
                    self._request_reconcile(session, self._resume_gap)
                    # The start-up gap is reconciled now; a later one began at its own loss.
                    self._resume_gap = None
                self._watch(session, lost)
                session.close()
                if self._stopping.is_set():
                    return
                self._queue.put(_LOST)
                reconcile = True
                if self.stop_at_eof:
                    # A replay's stream ended: that is its normal end, not a lost connection.
                    log.info("AMI: the stream from %s ended", where)
                    self._state = "stream ended"
                    return
                self._set_state(f"connection to {where} lost: {session.lost_reason or 'no Pong'}")
            log.info("AMI: retrying in %g s", delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, s.reconnect_max_seconds)

    def _watch(self, session: AmiSession, lost: threading.Event) -> None:
        """Ping with a deadline until the connection is lost or does not answer."""
        interval = self.settings.ping_interval_seconds
        while not self._stopping.is_set():
            if lost.wait(interval):
                return
            try:
                session.ping()
            except ActionTimeout as exc:
                if self._queue.full() or time.monotonic() - session.last_received < interval:
                    # Busy, not dead: the reader waits for room in the queue (backpressure),
                    # so the Pong is still unread behind the events.
                    continue
                log.warning("AMI: %s; reconnecting", exc)
                return
            except ManagerException:
                return

    def _request_reconcile(self, session: AmiSession, gap_started: datetime | None) -> None:
        action_id = session.new_action_id()
        self._reconciles[action_id] = _Reconcile(gap_started)
        try:
            session.send_raw({"Action": "CoreShowChannels", "ActionID": action_id})
            queue_status = session.new_action_id()
            self._queue_statuses.add(queue_status)
            session.send_raw({"Action": "QueueStatus", "ActionID": queue_status})
        except ManagerException as exc:
            log.warning("AMI: reconcile request failed (%s)", exc)

    def _enqueue(self, blocks: list[bytes]) -> None:
        self._queue.put((blocks, utcnow()))  # blocks when full: backpressure, never a drop

    # -- consuming --------------------------------------------------------------------------

    def _consume(self) -> None:
        batch = Batch()
        opened = time.monotonic()
        # A batch waits this long for more reads before it is written: fewer, larger
        # transactions under load, at most this much extra delay when the line is quiet.
        linger = min(self.flush_interval, 0.02)
        while True:
            wait = self.flush_interval if not batch else opened + linger - time.monotonic()
            try:
                item = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                item = _IDLE
            if item is None:
                self._flush(batch, final=True)
                return
            if item is _LOST:
                # The gap begins after the last event read, in the PBX's clock if it sends one.
                self._gap_started = self.tracker.last_event_time or utcnow()
            elif item is not _IDLE:
                assert isinstance(item, tuple)
                if not batch:
                    opened = time.monotonic()
                blocks, received_at = item
                for block in blocks:
                    # Parsed here, not on the reader thread: see AmiSession.on_blocks.
                    frame, junk = read_frame(block)
                    if junk:
                        self.counters.junk_frames += 1
                        log_junk(block)
                    if frame is not None:
                        self._handle(frame, received_at, batch)
            if batch and (
                len(batch) >= self.batch_max
                or item is _IDLE
                or time.monotonic() - opened >= self.flush_interval
            ):
                self._flush(batch)
                batch = Batch()
            elif item is _IDLE and len(self.spool) and time.monotonic() >= self._retry_db_at:
                self._flush(Batch())  # the database may be back: drain the spool

    def _handle(self, frame: Frame, received_at: datetime, batch: Batch) -> None:
        self.counters.frames += 1
        action_id = frame.action_id
        if action_id is not None and action_id in self._reconciles:
            self._reconcile_item(action_id, frame, batch)
            return
        if action_id is not None and action_id in self._queue_statuses:
            self._queue_status_item(action_id, frame, received_at, batch)
            return
        try:
            tracked = self.tracker.feed(frame, received_at)
        except Exception:  # a frame the tracker chokes on must not stop the listener
            log.exception("AMI tracker failed on %s; frame skipped", frame.name)
            return
        batch.add_tracked(frame, tracked, received_at)

    def _reconcile_item(self, action_id: str, frame: Frame, batch: Batch) -> None:
        pending = self._reconciles[action_id]
        if frame.name == "CoreShowChannel":
            uniqueid = frame.get("Uniqueid")
            if uniqueid:
                pending.alive.add(uniqueid)
                # Where the call is now (queued, connected), or a call begun during the gap.
                batch.add(
                    None, lists.channel_listed(self.tracker, frame, event_time(frame, utcnow()))
                )
        elif frame.name == "CoreShowChannelsComplete":
            del self._reconciles[action_id]
            began = pending.gap_started_at or self._gap_started or utcnow()
            closed = self.tracker.close_gap(pending.alive, began)
            self.counters.gap_closed_calls += len(closed)
            for state in closed:
                log.warning(
                    "call %s ended during the AMI gap: closed, marked gap",
                    state.uniqueid,
                    extra={"uniqueid": state.uniqueid, "linkedid": state.linkedid},
                )
                batch.add(None, state)

    def _queue_status_item(
        self, action_id: str, frame: Frame, received_at: datetime, batch: Batch
    ) -> None:
        """QueueStatus after a reconnect: each QueueEntry is a caller waiting now."""
        if frame.name == "QueueEntry":
            batch.add(None, lists.queue_entry(self.tracker, frame, event_time(frame, received_at)))
        elif frame.name == "QueueStatusComplete":
            self._queue_statuses.discard(action_id)

    def _flush(self, batch: Batch, *, final: bool = False) -> None:
        if len(self.spool):
            if time.monotonic() < self._retry_db_at and not final:
                self._spool(batch)
                return
            if not self._drain():
                self._spool(batch)
                return
        if not batch:
            return
        try:
            self._write(batch)
        except StoreUnavailable as exc:
            self._db_down(exc)
            self._spool(batch)
            return
        self._stored(batch)

    def _write(self, batch: Batch) -> None:
        """Write; a batch the database refuses is retried as call states alone, then dropped."""
        try:
            self.store.write(batch)
        except StoreRejected as exc:
            log.error("AMI store refused a batch (%s): retrying without its raw events", exc)
            try:
                self.store.write(Batch(calls=batch.calls))
            except StoreRejected as again:
                calls = ", ".join(sorted(batch.calls)) or "none"
                log.error("AMI store refused the call states too (%s); calls: %s", again, calls)

    def _drain(self) -> bool:
        for path, spooled in self.spool.pending():
            try:
                self._write(spooled)
            except StoreUnavailable as exc:
                self._db_down(exc)
                return False
            self.spool.done(path)
            self._stored(spooled)
        log.info("spool drained: the database is back")
        return True

    def _spool(self, batch: Batch) -> None:
        if batch:
            self.spool.append(batch)
            self.counters.spooled_batches += 1

    def _db_down(self, exc: Exception) -> None:
        self._retry_db_at = time.monotonic() + self.db_retry_seconds
        state = f"database unavailable, events spooled on disk ({exc})"
        if self._db_state == "ok":
            log.error("AMI store: %s", state)
        self._db_state = state[:300]

    def _stored(self, batch: Batch) -> None:
        self._db_state = "ok"
        self.counters.batches += 1
        self.counters.stored_events += len(batch.events)
        if self.on_stored is not None:
            self.on_stored(batch)
        if self.publish is not None and batch.calls:
            try:
                self.publish(list(batch.calls.values()))
            except Exception:
                log.exception("live bus publish failed; the calls are stored")


def _setter(event: threading.Event) -> Callable[[str], None]:
    return lambda _reason: event.set()
