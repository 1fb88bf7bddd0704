"""The AMI listener: session -> bounded queue -> tracker -> batched store (or the spool).

Two threads. The connection thread logs in (pyst2), pings with a deadline, and on a lost
connection reconnects with backoff, a new session each time; after a reconnect it asks for
CoreShowChannels and QueueStatus. The consumer thread feeds frames to the tracker in wire order,
so those list replies are handled at exactly their place in the stream: an open call whose
channel is not in the list ended during the gap and is closed, marked gap. A full queue blocks
the reader (TCP backpressure) rather than dropping a frame.

Nothing the PBX sends stops it: a frame the tracker cannot handle is logged, stored raw and
skipped; a batch the database refuses is split until the refused row is alone (ami/isolate.py);
a spool the disk refuses keeps the batches in memory until it takes them again; a consumer that
fails starts again where it was, and one whose thread died is seen and started again, counted
in ``counters.consumer_restarts``. A listener that starts without its database keeps the
frames as read (unparsed, in the spool), and tracks them once it can resume the open calls:
first the spool is drained, then the open calls are loaded, so nothing decides on a call before
its spooled events are stored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

from asterisk.manager import ManagerException

from callcenter.ami.backlog import Backlog
from callcenter.ami.batch import Batch, StoredEvent
from callcenter.ami.call_state import CallState
from callcenter.ami.client import ActionTimeout, AmiSession, AuthenticationFailed
from callcenter.ami.counters import Counters
from callcenter.ami.frames import Frame, log_junk, read_frame
from callcenter.ami.gap_lists import GapLists
from callcenter.ami.identity import EventKeys
from callcenter.ami.isolate import write_isolating
from callcenter.ami.spool import Read, Spool
from callcenter.ami.store import CallStore, StoreUnavailable
from callcenter.ami.tracker import CallTracker
from callcenter.db import utcnow
from callcenter.settings import AmiSettings

log = logging.getLogger(__name__)

Publish = Callable[[list[CallState]], None]
_IDLE = object()
_LOST = object()  # in the queue at the place the connection was lost


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
        self._gap_lists = GapLists(self.tracker, self.counters)
        self._session: AmiSession | None = None
        self._state = "starting"
        self._db_state = "ok"
        self._retry_db_at = 0.0
        self._threads: list[threading.Thread] = []
        self._resume_gap: datetime | None = None
        self._consumer_lock = threading.Lock()
        self._consumer_done = False
        self._consumer_failure: str | None = None
        # Consumer thread only (and start(), before it runs):
        self._gap_started: datetime | None = None
        self._resumed = False  # open calls loaded, after the spool was drained
        self.backlog = Backlog(
            spool, self.counters, write=self._write, stored=self._stored, db_down=self._db_down
        )
        self._batch = Batch()
        self._opened = time.monotonic()
        self._keys = EventKeys()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        # Drained before anything reads the open calls (or a spooled call's end is missed);
        # when the database is down, the consumer does it once it is back.
        self._resume()
        self.store.start()
        self._start_consumer()
        thread = threading.Thread(target=self._connect_loop, name="ami-conn", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_consumer(self) -> None:
        thread = threading.Thread(target=self._consume_forever, name="ami-consumer", daemon=True)
        thread.start()
        if self._threads:
            self._threads[0] = thread
        else:
            self._threads.append(thread)

    def _ensure_consumer(self) -> None:
        """Start the consumer again if its thread died (it is never left dead)."""
        with self._consumer_lock:
            if not self._threads or self._threads[0].is_alive() or self._consumer_done:
                return
            self.counters.consumer_restarts += 1
            log.error("AMI consumer thread died (%s): starting it again", self._consumer_failure)
            self._start_consumer()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if not self._threads:
            return
        self._ensure_consumer()  # a reader blocked on a full queue ends only once it drains
        session = self._session
        if session is not None:
            session.close()
        self._threads[1].join(timeout)
        self._finish_consumer(timeout)
        self.store.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Until the stream ends (stop_at_eof) and everything read is stored."""
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        reader = self._threads[1]
        while reader.is_alive() and time.monotonic() < deadline:
            # A reader blocked on a full queue ends only once a consumer drains it: a dead
            # consumer is seen here too, not only by the watchdog between pings.
            self._ensure_consumer()
            reader.join(min(0.5, max(0.0, deadline - time.monotonic())))
        if reader.is_alive():
            return False
        left = None if timeout is None else max(0.0, deadline - time.monotonic())
        if not self._finish_consumer(left):
            return False
        self.store.close()
        return True

    def _finish_consumer(self, timeout: float | None) -> bool:
        """Ask the consumer to store what it has and end; never blocks on a dead one (a dead
        consumer is started again to drain the queue). False if it has not ended in time."""
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while True:
            self._ensure_consumer()
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    return False
        while time.monotonic() < deadline:
            consumer = self._threads[0]
            consumer.join(min(0.1, max(deadline - time.monotonic(), 0.0)))
            if self._consumer_done:
                return True
            self._ensure_consumer()  # died on the way: the None is still in the queue
        return self._consumer_done

    def readiness(self) -> str:
        """ "ok", or why the listener is not doing its job (for /readyz)."""
        self._ensure_consumer()
        states = (self._state, self._db_state, self.backlog.state)
        problems = [state for state in states if state != "ok"]
        return "; ".join(problems) or "ok"

    # -- connection -------------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self._state:
            (log.info if state == "ok" else log.warning)("AMI: %s", state)
        self._state = state

    def _connect_loop(self) -> None:
        s = self.settings
        delay = s.reconnect_min_seconds
        # Open calls may have ended while no listener ran: ask which channels are up (if
        # the database is down at start, nobody knows yet whether calls are open).
        reconcile = bool(self._resume_gap) or not self._resumed
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
                    self._gap_lists.request(session, self._resume_gap)
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
            self._ensure_consumer()
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
            self._ensure_consumer()
            try:
                session.ping()
            except ActionTimeout as exc:
                busy = self._queue.full() and self._threads[0].is_alive()
                if busy or time.monotonic() - session.last_received < interval:
                    # Busy, not dead: the reader waits for room in the queue (backpressure),
                    # so the Pong is still unread behind the events.
                    continue
                log.warning("AMI: %s; reconnecting", exc)
                return
            except ManagerException:
                return

    def _enqueue(self, blocks: list[bytes]) -> None:
        self._queue.put((blocks, utcnow()))  # blocks when full: backpressure, never a drop

    # -- consuming --------------------------------------------------------------------------

    def _consume_forever(self) -> None:
        """The consumer thread: a failure is logged and the consumer goes on where it was."""
        while True:
            try:
                self._consume()
            except Exception as exc:
                self._consumer_failure = f"{type(exc).__name__}: {exc}"[:200]
                self.counters.consumer_restarts += 1
                log.exception("AMI consumer failed: starting it again")
                self._set_aside_batch()
                time.sleep(0.05)  # a failure that repeats must not spin a core
                continue
            except BaseException as exc:
                self._consumer_failure = type(exc).__name__
                raise
            self._consumer_done = True
            return

    def _set_aside_batch(self) -> None:
        """After a failure: the batch in hand goes to the spool (it may be what failed)."""
        batch, self._batch = self._batch, Batch()
        try:
            self.backlog.add(batch)
        except Exception:
            calls = ", ".join(sorted(batch.calls)) or "none"
            log.exception("AMI batch lost after a failure: calls %s", calls)

    def _consume(self) -> None:
        # A batch waits this long for more reads before it is written: fewer, larger
        # transactions under load, at most this much extra delay when the line is quiet.
        linger = min(self.flush_interval, 0.02)
        while True:
            pending = len(self._batch) + len(self.backlog.unresumed)
            wait = self.flush_interval if not pending else self._opened + linger - time.monotonic()
            try:
                item = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                item = _IDLE
            if item is None:
                self._flush(final=True)
                return
            if item is not _IDLE:
                if not pending:
                    self._opened = time.monotonic()
                read: Read = None
                if item is not _LOST:
                    assert isinstance(item, tuple)
                    read = item
                if self._resumed:
                    self._take(read, self._batch)
                else:
                    self.backlog.unresumed.append(read)
                pending = len(self._batch) + len(self.backlog.unresumed)
            if pending and (
                pending >= self.batch_max
                or item is _IDLE
                or time.monotonic() - self._opened >= self.flush_interval
            ):
                self._flush()
            elif (
                item is _IDLE
                and (not self._resumed or self.backlog.waiting())
                and time.monotonic() >= self._retry_db_at
            ):
                self._flush()  # the database may be back: resume, drain the spool

    def _take(self, read: Read, batch: Batch) -> None:
        """Track one read (or the place the connection was lost) into ``batch``."""
        if read is None:
            # The gap begins after the last event read, in the PBX's clock if it sends one.
            self._gap_started = self.tracker.last_event_time or utcnow()
            return
        blocks, received_at = read
        for block in blocks:
            # Parsed here, not on the reader thread: see AmiSession.on_blocks.
            frame, junk = read_frame(block)
            if junk:
                self.counters.junk_frames += 1
                log_junk(block)
            if frame is not None:
                self._handle(frame, received_at, batch)

    def _handle(self, frame: Frame, received_at: datetime, batch: Batch) -> None:
        self.counters.frames += 1
        action_id = frame.action_id
        if action_id is not None and action_id in self._gap_lists.channel_lists:
            known_gap = self._gap_started or self._resume_gap
            self._gap_lists.channel_item(action_id, frame, batch, known_gap)
            return
        if action_id is not None and action_id in self._gap_lists.queue_lists:
            self._gap_lists.queue_item(action_id, frame, received_at, batch)
            return
        try:
            tracked = self.tracker.feed(frame, received_at)
        except Exception:  # a frame the tracker chokes on must not stop the listener
            self.counters.tracker_errors += 1
            log.exception("AMI tracker failed on %s; frame stored raw and skipped", frame.name)
            key = self._keys.key_of(frame.dedup_key)
            batch.add(StoredEvent(frame, received_at, received_at, None, key), None)
            return
        batch.add_tracked(frame, tracked, received_at, self._keys)

    def _flush(self, *, final: bool = False) -> None:
        if not self._resumed:
            due = final or time.monotonic() >= self._retry_db_at
            if not (due and self._resume()):
                self.backlog.spool_reads()
                return
        batch, self._batch = self._batch, Batch()
        if self.backlog.waiting():
            if time.monotonic() < self._retry_db_at and not final:
                self.backlog.add(batch)
                return
            if not self.backlog.drain():
                self.backlog.add(batch)
                return
        if not batch:
            return
        try:
            self._write(batch)
        except StoreUnavailable as exc:
            self._db_down(exc)
            self.backlog.add(batch)
            return
        self._stored(batch)

    def _write(self, batch: Batch) -> None:
        """Write; rows the database refuses even alone go to the quarantine (ami/isolate.py)."""
        self.counters.quarantined_rows += write_isolating(self.store, batch)

    def _resume(self) -> bool:
        """Pick up where the last listener stopped (see Backlog.resume), then track the reads
        kept in memory meanwhile. False while the database is down."""
        if not self.backlog.resume(self._load_open_calls, self._take):
            return False
        for read in self.backlog.unresumed:
            self._take(read, self._batch)
        self.backlog.unresumed = []
        return True

    def _load_open_calls(self) -> bool:
        try:
            open_calls = self.store.load_open_calls()
        except Exception as exc:  # the database is down: the consumer tries again later
            self._db_down(StoreUnavailable(f"{type(exc).__name__}: {exc}"))
            log.warning("could not load open calls to resume (%s)", type(exc).__name__)
            return False
        if open_calls:
            self.tracker.resume(open_calls)
            self._resume_gap = max(c.last_event_at for c in open_calls)
            log.info("resuming %d open calls", len(open_calls))
        self._resumed = True
        return True

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
