"""The live bus: every call change, to every watcher (the SSE stream of the operator board).

``InProcessBus`` fans out within one process (the embedded SQLite setup). ``PostgresBus``
publishes with ``pg_notify`` and listens with ``LISTEN`` on a connection of its own, so a change
written by the listener process reaches API replicas in other processes. Watchers are asyncio
consumers; publishers may be any thread. A publish hands its messages to each event loop that
has watchers with at most one ``call_soon_threadsafe`` per wake-up of that loop (not one per
message or per watcher), and the loop gives the whole batch to each of its watchers. A watcher
too slow to keep up loses its oldest messages and gets a ``resync`` marker instead of stalling
everyone else.

A publish goes out as few notifications as it fits in: its messages packed in order into JSON
arrays of up to ``MAX_NOTIFY_BYTES`` (PostgreSQL refuses a payload of 8,000 bytes), all of them
in one transaction, so the LISTEN side wakes once per array, not once per call change. The
LISTEN side takes an array or a single object (what one-message publishers send). A message too
large to go alone is replaced, in its place, by a ``resync``.

``PostgresBus`` never blocks its publisher (the AMI listener's consumer thread, which records
calls): messages go to a bounded outbox that a thread of its own sends, with connect, statement
and TCP time-outs. Whatever could not be delivered (outbox full, PostgreSQL unreachable, the
LISTEN connection lost and re-established) is followed by a ``resync``, so no watcher keeps a
stale board without knowing it. A bad notification is logged and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "callcenter_live"
RESYNC: dict[str, Any] = {"type": "resync"}
_RESYNC_JSON = json.dumps(RESYNC, separators=(",", ":"))
# pg_notify payloads must stay under 8000 bytes (json.dumps writes ASCII: a character a byte).
MAX_NOTIFY_BYTES = 7900
OUTBOX_BATCHES = 1000
# Every bus connection: a bounded connect, statement and dead-peer detection (a half-open TCP
# connection is given up after about 5 s instead of hanging for the kernel's 15 minutes).
CONNECT_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": 3,
    "options": "-c statement_timeout=3000",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 5000,
}


class Subscription:
    """One watcher's messages, on its event loop: read one by one (``get``) or all that are
    waiting at once (``get_batch``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.size = size
        self._messages: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def offer_all(self, messages: Sequence[dict[str, Any]]) -> None:
        """Runs on the subscriber's loop: one wake-up for a whole batch."""
        if len(self._messages) + len(messages) >= self.size:
            # Too slow: drop what it has not read, tell it to reload the board.
            self._messages.clear()
            self._messages.append(RESYNC)
            messages = messages[-(self.size - 1) :]
        self._messages.extend(messages)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        while not self._messages:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get(self) -> dict[str, Any]:
        await self._wait()
        return self._messages.popleft()

    async def get_batch(self) -> list[dict[str, Any]]:
        """Every message waiting (at least one), oldest first."""
        await self._wait()
        messages = list(self._messages)
        self._messages.clear()
        return messages


class _LoopInbox:
    """What publishers handed to one event loop and it has not taken yet. However many
    messages are published and however many watchers that loop serves, a publisher makes at
    most one ``call_soon_threadsafe`` per wake-up of the loop: later publishes join the
    pending hand-off. Bounded: a loop that does not take its messages gets a ``resync``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self.limit = limit
        self.subscribers: set[Subscription] = set()
        self._pending: list[dict[str, Any]] = []
        self._scheduled = False
        self._lock = threading.Lock()

    def put(self, messages: Sequence[dict[str, Any]]) -> None:
        """From any thread."""
        with self._lock:
            if len(self._pending) + len(messages) >= self.limit:
                self._pending = [RESYNC]
                messages = messages[-(self.limit - 1) :]
            self._pending.extend(messages)
            if self._scheduled:
                return
            self._scheduled = True
        with suppress(RuntimeError):  # its loop is closed: its watchers are going away
            self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """On the loop: everything pending, to every watcher of this loop."""
        with self._lock:
            messages, self._pending, self._scheduled = self._pending, [], False
        for subscriber in list(self.subscribers):
            subscriber.offer_all(messages)


class InProcessBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._inboxes: dict[asyncio.AbstractEventLoop, _LoopInbox] = {}
        self._lock = threading.Lock()

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        self._fan_out(messages)

    def _fan_out(self, messages: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            inboxes = list(self._inboxes.values())
        for inbox in inboxes:
            inbox.put(messages)

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """From inside a running event loop: ``with bus.subscribe() as sub: await sub.get()``."""
        loop = asyncio.get_running_loop()
        subscription = Subscription(loop, self.queue_size)
        with self._lock:
            inbox = self._inboxes.get(loop)
            if inbox is None:
                inbox = self._inboxes[loop] = _LoopInbox(loop, self.queue_size)
            inbox.subscribers.add(subscription)
        self._subscribed()
        try:
            yield subscription
        finally:
            with self._lock:
                inbox.subscribers.discard(subscription)
                if not inbox.subscribers and self._inboxes.get(loop) is inbox:
                    del self._inboxes[loop]

    def open_streams(self) -> int:
        """How many subscriptions are open, on every loop (one per live page or API stream)."""
        with self._lock:
            return sum(len(inbox.subscribers) for inbox in self._inboxes.values())

    def _subscribed(self) -> None:
        """Hook: the PostgreSQL bus starts listening on the first subscriber."""

    def close(self) -> None:
        with self._lock:
            self._inboxes.clear()


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus(InProcessBus):
    def __init__(self, url: str, queue_size: int = 1000) -> None:
        super().__init__(queue_size)
        self.url = _libpq_url(url)
        self._publisher: psycopg.Connection[Any] | None = None
        self._outbox: queue.Queue[list[str] | None] = queue.Queue(maxsize=OUTBOX_BATCHES)
        self._lost = False  # something was not delivered: the next send begins with a resync
        self._sender: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self.listening = threading.Event()

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        """Queues the messages for the sending thread; never waits for PostgreSQL."""
        payloads = pack_payloads(messages)
        self._start(sender=True)
        try:
            self._outbox.put_nowait(payloads)
        except queue.Full:
            if not self._lost:
                log.warning("live bus: PostgreSQL is not keeping up; watchers will resync")
            self._lost = True

    def _start(self, *, sender: bool) -> None:
        with self._start_lock:
            if sender and self._sender is None:
                self._sender = threading.Thread(
                    target=self._send_loop, name="live-bus-notify", daemon=True
                )
                self._sender.start()
            if not sender and self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="live-bus-listen", daemon=True
                )
                self._listener.start()

    def _send_loop(self) -> None:
        while (payloads := self._outbox.get()) is not None:
            if self._lost:
                self._lost = False
                payloads = [_RESYNC_JSON, *payloads]
            try:
                self._send(payloads)
            except Exception as exc:  # PostgreSQL away: tell watchers once it is back
                log.warning("live bus: NOTIFY failed (%s); watchers will resync", exc)
                self._lost = True
                if self._stopping.is_set():
                    break  # closing: do not try the rest one by one
        if self._publisher is not None:
            self._publisher.close()

    def _send(self, payloads: list[str]) -> None:
        for attempt in (1, 2):
            try:
                if self._publisher is None or self._publisher.closed:
                    self._publisher = psycopg.connect(self.url, **CONNECT_OPTIONS)
                # One transaction a publish: delivered together, in order, after the earlier
                # ones. (Not several publishes in one: PostgreSQL delivers a payload repeated
                # within a transaction once.)
                with self._publisher.transaction(), self._publisher.cursor() as cursor:
                    cursor.executemany("SELECT pg_notify(%s, %s)", [(CHANNEL, p) for p in payloads])
                return
            except psycopg.OperationalError:
                if self._publisher is not None:
                    self._publisher.close()
                self._publisher = None
                if attempt == 2:
                    raise

    def _subscribed(self) -> None:
        self._start(sender=False)

    def _listen(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self.url, application_name="callcenter-live-listen", **CONNECT_OPTIONS
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    # Whatever was published while nobody listened is lost: reload the boards.
                    self._fan_out([RESYNC])
                    self.listening.set()
                    delay = 0.5
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=0.5):
                            self._deliver(notify.payload)
            except Exception as exc:  # whatever it was, listen again: never end this thread
                self.listening.clear()
                log.warning("live bus: LISTEN failed (%s); retrying in %g s", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 10.0)

    def _deliver(self, payload: str) -> None:
        messages = unpack_payload(payload)
        if messages:
            self._fan_out(messages)

    def close(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        if self._sender is not None:
            with suppress(queue.Full):
                self._outbox.put(None, timeout=5)
            self._sender.join(timeout=10)
        super().close()


def pack_payloads(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The messages as NOTIFY payloads, in order: JSON arrays of at most ``MAX_NOTIFY_BYTES``.
    A message that cannot go alone becomes a resync in its place (its watchers reload).

    >>> pack_payloads([{"n": 1}, {"n": 2}, {"big": "x" * MAX_NOTIFY_BYTES}, {"n": 3}])
    ['[{"n":1},{"n":2},{"type":"resync"},{"n":3}]']
    """
    payloads: list[str] = []
    parts: list[str] = []
    size = 1  # "[": each part then adds itself and a "," or the closing "]"
    for message in messages:
        text = json.dumps(message, separators=(",", ":"))
        if len(text) + 2 > MAX_NOTIFY_BYTES:
            log.warning("live bus: a %d-byte message goes as a resync", len(text))
            text = _RESYNC_JSON
        if parts and size + len(text) + 1 > MAX_NOTIFY_BYTES:
            payloads.append("[" + ",".join(parts) + "]")
            parts, size = [], 1
        parts.append(text)
        size += len(text) + 1
    if parts:
        payloads.append("[" + ",".join(parts) + "]")
    return payloads


def unpack_payload(payload: str) -> list[dict[str, Any]]:
    """A notification's messages: from a JSON array of objects, or one object. Anything else
    is logged and skipped, never fatal.

    >>> unpack_payload('[{"n":1},{"n":2}]'), unpack_payload('{"n":3}'), unpack_payload("[1]")
    ([{'n': 1}, {'n': 2}], [{'n': 3}], [])
    """
    try:
        data = json.loads(payload)
    except ValueError:
        log.warning("live bus: ignored a notification that is not JSON (%d bytes)", len(payload))
        return []
    items = data if isinstance(data, list) else [data]
    messages = [item for item in items if isinstance(item, dict)]
    if len(messages) < len(items):
        log.warning(
            "live bus: ignored %d notified items that are not JSON objects",
            len(items) - len(messages),
        )
    return messages


def make_live_bus(database_url: str) -> InProcessBus:
    """Across processes on PostgreSQL, within the process otherwise."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresBus(database_url)
    return InProcessBus()
