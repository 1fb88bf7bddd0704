"""The AMI session: pyst2's Manager for login and actions, with each of its defects defused.

pyst2 (0.5.1) stays the session library: ``login()``, ``ping()``, ``logoff()`` and the other
action helpers are pyst2's own. What this subclass replaces, and why (see shared/PYST2.md):

* ``connect``: pyst2 reads one byte per system call and parses with a reader that glues every
  frame after "status will follow" into one message (Status/QueueStatus lists and any live event
  in that window are never dispatched), collapses repeated keys, dies on ``ChanVariable``
  (``dict.has_key``) and drops invalid UTF-8. Here the socket is read 64 KiB at a time and the
  stream goes through :mod:`callcenter.ami.frames`, which has none of those faults.
* ``send_action``: pyst2's has a mutable default dict (stale headers and a reused ActionID) and
  takes the next reply in FIFO order, waiting forever. Here every action gets a fresh dict and
  its own ActionID, and the reply is the one carrying that ActionID, within a deadline.
* Event dispatch: a callback that raises is logged and the next frame is delivered; pyst2's
  dispatch thread would die and stop all events for good.
* Reconnect: pyst2 cannot restart its threads. A lost session is finished; the listener builds
  a new ``AmiSession`` for the next attempt.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from asterisk.manager import (
    Manager,
    ManagerAuthException,
    ManagerException,
    ManagerSocketException,
)

from callcenter.ami.frames import Frame, FrameParser, log_junk, read_frame

log = logging.getLogger(__name__)

READ_SIZE = 65536
_session_ids = itertools.count(1)

__all__ = [
    "ActionTimeout",
    "AmiSession",
    "AuthenticationFailed",
    "ConnectionLost",
    "Reply",
]


class ActionTimeout(ManagerException):  # type: ignore[misc]
    """No reply with our ActionID arrived before the deadline."""


class ConnectionLost(ManagerSocketException):  # type: ignore[misc]
    """The AMI socket closed or failed."""


AuthenticationFailed = ManagerAuthException


class Reply:
    """A reply frame with pyst2's ``ManagerMsg`` reading interface (``get_header``...)."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.headers = dict(frame.headers)
        self.data = ""

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.frame.get(name, default)

    def has_header(self, name: str) -> bool:
        return self.frame.get(name) is not None

    def __getitem__(self, name: str) -> str:
        return self.frame[name]

    def __repr__(self) -> str:
        return self.frame.get("Response") or self.frame.name


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Frame | None = None


class AmiSession(Manager):  # type: ignore[misc]
    """One connection. ``on_frame(frame)`` gets every event (and list item), in wire order.

    ``on_blocks(blocks)`` instead gets them a read at a time and unparsed, as each frame's bytes
    (:func:`callcenter.ami.frames.read_frame` parses one): one hand-off per read, and parsing
    on the consumer's thread, not the reader's, is what lets the listener keep up with a surge.
    Replies to actions are parsed and matched here either way.
    """

    def __init__(
        self,
        on_frame: Callable[[Frame], None] | None = None,
        *,
        on_blocks: Callable[[list[bytes]], None] | None = None,
        action_timeout: float = 5.0,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()  # pyst2's threads are built but never started: ours replace them
        self.on_frame = on_frame
        self.on_blocks = on_blocks
        self.on_lost = on_lost
        self.action_timeout = action_timeout
        self.greeting = ""
        self.lost_reason: str | None = None
        self.last_received = 0.0  # time.monotonic() of the last bytes read
        self._prefix = f"cc{next(_session_ids)}"
        self._ids = itertools.count(1)
        self._pending: dict[str, _Waiter] = {}
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._reader: threading.Thread | None = None

    # -- connection -------------------------------------------------------------------------

    def connect(self, host: str, port: int = 5038, timeout: float = 5.0) -> str:
        """Connect and read the greeting; frames then flow to ``on_frame`` from a reader thread."""
        if self._reader is not None:
            raise ManagerException("an AmiSession connects once: build a new one to reconnect")
        try:
            sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as exc:
            raise ConnectionLost(exc.errno or 0, f"cannot connect to {host}:{port}: {exc}") from exc
        parser = FrameParser()
        greeting: bytes | None = None
        try:
            while greeting is None:
                data = sock.recv(READ_SIZE)
                if not data:
                    raise ConnectionLost(0, "closed before the greeting")
                parser.push(data)
                greeting = parser.take_line()
        except OSError as exc:
            sock.close()
            raise ConnectionLost(0, f"no greeting: {exc}") from exc
        sock.settimeout(None)
        self._socket = sock
        self.greeting = self.title = greeting.decode("latin-1")
        self._connected.set()
        self._reader = threading.Thread(
            target=self._read, args=(sock, parser), name=f"ami-reader-{self._prefix}", daemon=True
        )
        self._reader.start()
        return self.greeting

    def connected(self) -> bool:
        reader = self._reader
        return bool(self._connected.is_set() and reader is not None and reader.is_alive())

    def close(self) -> None:
        """Drop the connection (no Logoff round trip: it may be the thing that hangs)."""
        self._connected.clear()
        sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)

    def __del__(self) -> None:  # pyst2's would send Logoff and join threads it never started
        pass

    # -- actions ----------------------------------------------------------------------------

    def send_action(self, cdict: Mapping[str, Any] | None = None, **kwargs: Any) -> Reply:
        """Send an action; return the reply with its ActionID, or raise ActionTimeout."""
        action = dict(cdict or {})  # a fresh dict every time (pyst2's default is shared)
        action.update(kwargs)
        action_id = str(action.get("ActionID") or f"{self._prefix}-{next(self._ids)}")
        action["ActionID"] = action_id
        waiter = self._register(action_id)
        try:
            self.send_raw(action)
            if not waiter.done.wait(self.action_timeout):
                raise ActionTimeout(
                    f"no reply to {action.get('Action')} within {self.action_timeout:g} s"
                )
        finally:
            with self._pending_lock:
                self._pending.pop(action_id, None)
        if waiter.reply is None:
            raise ConnectionLost(0, self.lost_reason or "connection lost")
        return Reply(waiter.reply)

    def send_raw(self, action: Mapping[str, Any]) -> None:
        """Write an action without waiting (list actions: the items come as events)."""
        if not self._connected.is_set() or self._socket is None:
            raise ConnectionLost(0, "not connected")
        lines = []
        for key, value in action.items():
            for item in value if isinstance(value, list) else [value]:
                text = f"{key}: {item}"
                if "\r" in text or "\n" in text:
                    raise ValueError(f"line break in AMI header {key!r}: refused")
                lines.append(text)
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        try:
            with self._write_lock:
                self._socket.sendall(payload)
        except OSError as exc:
            raise ConnectionLost(exc.errno or 0, str(exc)) from exc

    def new_action_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _register(self, action_id: str) -> _Waiter:
        waiter = _Waiter()
        with self._pending_lock:
            self._pending[action_id] = waiter
        return waiter

    # -- reading ----------------------------------------------------------------------------

    def _read(self, sock: socket.socket, parser: FrameParser) -> None:
        reason = "closed by Asterisk"
        try:
            self._deliver(parser)
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    break
                self.last_received = time.monotonic()
                parser.push(data)
                self._deliver(parser)
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.lost_reason = reason
            self._connected.clear()
            with self._pending_lock:
                waiters = list(self._pending.values())
            for waiter in waiters:
                waiter.done.set()
            if self.on_lost is not None:
                self.on_lost(reason)

    def _deliver(self, parser: FrameParser) -> None:
        if self.on_blocks is None:
            for frame in parser.frames():
                if frame.is_response:
                    self._reply(frame)
                elif self.on_frame is not None:
                    self._call(self.on_frame, frame, frame.name)
            return
        events: list[bytes] = []
        for block in parser.blocks():
            if block.startswith(b"Event: "):
                events.append(block)
                continue
            reply, junk = read_frame(block)
            if reply is None or not reply.is_response:
                events.append(block)  # debris, or an event behind it: the consumer's to log
                continue
            if junk:
                log_junk(block)
            self._reply(reply)
        if events:
            self._call(self.on_blocks, events, f"a read of {len(events)} frames")

    def _reply(self, frame: Frame) -> None:
        """Hands a reply to whoever waits for its ActionID (nobody: someone else's action)."""
        action_id = frame.action_id
        with self._pending_lock:
            waiter = self._pending.get(action_id) if action_id else None
        if waiter is not None:
            waiter.reply = frame
            waiter.done.set()

    def _call(self, handler: Callable[[Any], None], argument: Any, what: str) -> None:
        try:
            handler(argument)
        except Exception:
            # pyst2's dispatch thread dies here and every later event is lost.
            log.exception("AMI frame handler failed on %s; continuing", what)
