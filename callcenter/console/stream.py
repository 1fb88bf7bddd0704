"""The console's live stream, built once for all pages.

Every page of the console watches the same calls, so the pages of one process share one
subscription to the live bus: each batch of changes gets its callers' prank flags in one
look-up and is turned into SSE bytes once (once more, masked, for pages whose role may not see
withheld numbers), and those same bytes go to every page. A page's stream then only writes
what has gathered in its outbox since its last write, in one piece: its cost per wake-up does
not grow with the number of changes, and the bus wakes the loop once per batch whatever the
number of pages. A page whose outbox grows past PAGE_BACKLOG_BYTES (its connection does not
take what it is sent) loses what is waiting and gets a ``resync`` instead: it reloads the board.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from callcenter.calls.privacy import mask_fields, sees_number
from callcenter.console import queue
from callcenter.live import InProcessBus, Subscription
from callcenter.models import Role

log = logging.getLogger(__name__)

RESYNC_EVENT = b'event: resync\ndata: {"type":"resync"}\n\n'
# About 2,000 call changes: far more than a page that keeps up ever has waiting.
PAGE_BACKLOG_BYTES = 1 << 20


class Page:
    """One page's outbox: the bytes its stream has not written yet."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.sees_numbers = sees_number(role)
        self._chunks: list[bytes] = []
        self._size = 0
        self._ready = asyncio.Event()

    def push(self, chunk: bytes) -> None:
        if self._size + len(chunk) > PAGE_BACKLOG_BYTES:
            self._chunks, self._size = [RESYNC_EVENT], len(RESYNC_EVENT)
        else:
            self._chunks.append(chunk)
            self._size += len(chunk)
        self._ready.set()

    async def take(self, timeout: float) -> bytes:
        """Everything waiting, in one piece; b"" when nothing came within ``timeout`` s."""
        if not self._chunks:
            with suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
        self._ready.clear()
        chunks, self._chunks, self._size = self._chunks, [], 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class LiveHub:
    """The pages of one event loop and their one bus subscription (while any page is open)."""

    def __init__(
        self, bus: InProcessBus, factory: sessionmaker[Session], prank_threshold: int
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.bus = bus
        self.factory = factory
        self.threshold = prank_threshold
        self.flags = queue.FlagCache()
        self._pages: set[Page] = set()
        self._pump: asyncio.Task[None] | None = None
        self._subscription = ExitStack()

    @contextmanager
    def page(self, role: Role) -> Iterator[Page]:
        """A page's outbox, filled from the moment this returns (subscribed before the page is
        told it is connected, so nothing published after that is missed)."""
        page = Page(role)
        if self._pump is None:
            subscription = self._subscription.enter_context(self.bus.subscribe())
            self._pump = self.loop.create_task(self._run(subscription))
        self._pages.add(page)
        try:
            yield page
        finally:
            self._pages.discard(page)
            if not self._pages and self._pump is not None:
                self._pump.cancel()
                self._pump = None
                self._subscription.close()

    async def _run(self, subscription: Subscription) -> None:
        while True:
            messages = await subscription.get_batch()
            try:
                await self._look_up_flags(messages)
                self._send(messages)
            except Exception:  # the stream must go on; the pages reload their board
                log.exception("console live stream: a batch could not be sent; pages resync")
                for page in list(self._pages):
                    page.push(RESYNC_EVENT)

    async def _look_up_flags(self, messages: list[dict[str, Any]]) -> None:
        numbers = [m["caller_e164"] for m in messages if isinstance(m.get("caller_e164"), str)]
        missing = self.flags.missing(numbers)
        if not missing:
            return

        def look_up() -> set[str]:
            with self.factory() as session:
                return queue.flagged_numbers(session, missing, self.threshold)

        try:
            flagged = await run_in_threadpool(look_up)
        except Exception as exc:  # the database is away: the changes go out all the same
            log.warning("console live stream: prank flags not looked up (%s)", type(exc).__name__)
            return
        self.flags.store(missing, flagged)

    def _send(self, messages: list[dict[str, Any]]) -> None:
        rendered: dict[bool, bytes] = {}
        for page in list(self._pages):
            chunk = rendered.get(page.sees_numbers)
            if chunk is None:
                chunk = rendered[page.sees_numbers] = self._render(messages, page.role)
            page.push(chunk)

    def _render(self, messages: list[dict[str, Any]], role: Role) -> bytes:
        parts = []
        for message in messages:
            kind = message.get("type", "call")
            body = message
            if kind == "call":
                body = self.flags.mark(message)  # a copy: the bus's message is shared
                mask_fields(body, role)
            parts.append(f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n")
        return "".join(parts).encode()


def hub_for(state: Any, bus: InProcessBus, prank_threshold: int) -> LiveHub:
    """The app's hub on the running loop (a test client may run the app on a loop of its own)."""
    hub: LiveHub | None = getattr(state, "console_live_hub", None)
    if hub is None or hub.loop is not asyncio.get_running_loop() or hub.bus is not bus:
        hub = state.console_live_hub = LiveHub(bus, state.sessionmaker, prank_threshold)
    return hub
