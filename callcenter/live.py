"""The live bus: every call change, to every watcher (the SSE stream of the operator board).

``InProcessBus`` fans out within one process (the embedded SQLite setup). ``PostgresBus``
publishes with ``pg_notify`` and listens with ``LISTEN`` on a connection of its own, so a change
written by the listener process reaches API replicas in other processes. Watchers are asyncio
consumers; publishers may be any thread. A watcher too slow to keep up loses its oldest messages
and gets a ``resync`` marker instead of stalling everyone else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "callcenter_live"
RESYNC: dict[str, Any] = {"type": "resync"}
# pg_notify payloads must stay under 8000 bytes.
MAX_NOTIFY_BYTES = 7900


class Subscription:
    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)

    def offer(self, message: dict[str, Any]) -> None:
        """Runs on the subscriber's loop."""
        if self.queue.qsize() >= self.queue.maxsize - 1:
            # Too slow: drop what it has not read, tell it to reload the board.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)
        self.queue.put_nowait(message)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()


class InProcessBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        self._fan_out(messages)

    def _fan_out(self, messages: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            for message in messages:
                try:
                    subscriber.loop.call_soon_threadsafe(subscriber.offer, message)
                except RuntimeError:  # its loop is closed: it is going away
                    break

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """From inside a running event loop: ``with bus.subscribe() as sub: await sub.get()``."""
        subscription = Subscription(asyncio.get_running_loop(), self.queue_size)
        with self._lock:
            self._subscribers.add(subscription)
        self._subscribed()
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers.discard(subscription)

    def _subscribed(self) -> None:
        """Hook: the PostgreSQL bus starts listening on the first subscriber."""

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus(InProcessBus):
    def __init__(self, url: str, queue_size: int = 1000) -> None:
        super().__init__(queue_size)
        self.url = _libpq_url(url)
        self._publisher: psycopg.Connection[Any] | None = None
        self._publish_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._stopping = threading.Event()
        self.listening = threading.Event()

    def publish(self, messages: Sequence[dict[str, Any]]) -> None:
        payloads = [json.dumps(m, separators=(",", ":")) for m in messages]
        payloads = [p if len(p) <= MAX_NOTIFY_BYTES else json.dumps(RESYNC) for p in payloads]
        with self._publish_lock:
            for attempt in (1, 2):
                try:
                    if self._publisher is None or self._publisher.closed:
                        self._publisher = psycopg.connect(self.url, autocommit=True)
                    with self._publisher.cursor() as cursor:
                        cursor.executemany(
                            "SELECT pg_notify(%s, %s)", [(CHANNEL, p) for p in payloads]
                        )
                    return
                except psycopg.OperationalError:
                    self._publisher = None
                    if attempt == 2:
                        raise

    def _subscribed(self) -> None:
        with self._publish_lock:
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name="live-bus-listen", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    while not self._stopping.is_set():
                        for notify in connection.notifies(timeout=0.5):
                            self._fan_out([json.loads(notify.payload)])
            except psycopg.Error as exc:
                self.listening.clear()
                log.warning("live bus: LISTEN failed (%s); retrying in %g s", exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 10.0)

    def close(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        with self._publish_lock:
            if self._publisher is not None:
                self._publisher.close()
        super().close()


def make_live_bus(database_url: str) -> InProcessBus:
    """Across processes on PostgreSQL, within the process otherwise."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return PostgresBus(database_url)
    return InProcessBus()
