"""A fake Asterisk: serves a recorded ami.raw over TCP as the real one would.

It sends the greeting, answers ``Login`` like Asterisk (a wrong secret gets ``Authentication
failed`` and the socket closed), then streams the recorded frames (optionally paced by the
trace's ``ami.jsonl`` times). While streaming it answers ``Ping``, ``CoreShowChannels``,
``QueueStatus`` and ``Logoff`` from what the stream has shown so far, so reconciliation after a
cut connection meets the same answers it would from a real PBX. ``plan`` says what each
successive connection gets: cutting a stream in two with frames left out in between is a
connection lost mid-call with a gap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from callcenter.ami.frames import Frame, FrameParser

log = logging.getLogger(__name__)

GREETING = b"Asterisk Call Manager/11.0.0\r\n"


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes to send, and when (seconds from the start of the stream; None: at once)."""

    data: bytes
    at: float | None = None


@dataclass(frozen=True, slots=True)
class Recording:
    greeting: bytes
    frames: list[Chunk]  # each a whole frame, terminator included, login reply left out

    @classmethod
    def load(cls, path: Path, *, stamp: bool = False, end_at: float | None = None) -> Recording:
        """Read ``ami.raw`` (frame bounds and times from ``ami.jsonl`` beside it when present).

        ``stamp`` adds the ``Timestamp`` header Asterisk sends with ``timestampevents = yes``
        (the recordings were made without it), from the capture's wall clock; ``end_at`` (an
        epoch time) moves that clock so the recording's last frame falls then, gaps kept (a
        trace replayed "as if just now", e.g. for the call-back worklist).
        """
        folder = path if path.is_dir() else path.parent
        raw = (folder / "ami.raw").read_bytes() if path.is_dir() else path.read_bytes()
        index = folder / "ami.jsonl"
        frames: list[Chunk] = []
        greeting = GREETING
        if index.exists():
            rows = [json.loads(line) for line in index.read_text().splitlines()]
            rows = [row for row in rows if row.get("dir") == "rx"]
            last = max((row["t_wall"] for row in rows if "t_wall" in row), default=0.0)
            shift = 0.0 if end_at is None else end_at - last
            for row in rows:
                data = raw[row["offset"] : row["offset"] + row["length"]]
                if row.get("type") == "greeting":
                    greeting = data
                    continue
                if stamp and row.get("type") == "event":
                    data = _stamped(data, row["t_wall"] + shift)
                frames.append(Chunk(data + b"\r\n\r\n", row.get("t_rel")))
        else:
            parser = FrameParser()
            parser.push(raw)
            greeting = (parser.take_line() or GREETING.rstrip()) + b"\r\n"
            frames = [Chunk(f.raw + b"\r\n\r\n") for f in parser.frames()]
        # The recorded Login reply answered the capture's login, not ours: we answer our own.
        frames = [f for f in frames if b"ActionID: login-1\r\n" not in f.data[:200]]
        return cls(greeting=greeting.rstrip(b"\r\n") + b"\r\n", frames=frames)


def _stamped(frame: bytes, when: float) -> bytes:
    first, sep, rest = frame.partition(b"\r\n")
    return first + b"\r\n" + f"Timestamp: {when:.6f}".encode() + sep + rest


def coalesce(chunks: Sequence[Chunk], size: int = 65536) -> list[Chunk]:
    """Glue frames into larger writes when pacing does not matter (fast replay)."""
    out: list[Chunk] = []
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk.data
        if len(buffer) >= size:
            out.append(Chunk(bytes(buffer)))
            buffer.clear()
    if buffer:
        out.append(Chunk(bytes(buffer)))
    return out


class _Channels:
    """Which channels are up, where they are, and who waits in a queue, as far as the stream
    has told: answers CoreShowChannels and QueueStatus."""

    def __init__(self) -> None:
        self.up: dict[str, list[tuple[str, str]]] = {}
        self.where: dict[str, dict[str, str]] = {}  # Context, Exten, Application, BridgeId...
        self.waiting: dict[str, tuple[list[tuple[str, str]], float | None]] = {}
        self.last_stamp: float | None = None
        self._parser = FrameParser()

    def play(self, data: bytes) -> None:
        for frame in self._parser.feed(data):
            uniqueid = frame.get("Uniqueid")
            if not uniqueid or frame.action_id:
                continue
            stamp = _float(frame.get("Timestamp"))
            self.last_stamp = stamp if stamp is not None else self.last_stamp
            name = frame.name
            if name == "Newchannel":
                self.up[uniqueid] = frame.headers
                self.where[uniqueid] = {"BridgeId": ""}
            elif name == "Hangup":
                self.up.pop(uniqueid, None)
                self.where.pop(uniqueid, None)
                self.waiting.pop(uniqueid, None)
            elif name == "Newexten" and uniqueid in self.where:
                self.where[uniqueid].update(
                    Context=frame.get("Context") or "",
                    Exten=frame.get("Extension") or frame.get("Exten") or "",
                    Application=frame.get("Application") or "",
                    ApplicationData=frame.get("AppData") or "",
                )
            elif name in ("BridgeEnter", "BridgeLeave") and uniqueid in self.where:
                bridge = frame.get("BridgeUniqueid") or ""
                self.where[uniqueid]["BridgeId"] = bridge if name == "BridgeEnter" else ""
            elif name == "QueueCallerJoin":
                self.waiting[uniqueid] = (frame.headers, stamp)
            elif name in ("QueueCallerLeave", "QueueCallerAbandon"):
                self.waiting.pop(uniqueid, None)

    def queue_entries(self) -> list[list[tuple[str, str]]]:
        """QueueEntry items, ``Wait`` from the stream's clock (its Timestamps)."""
        items = []
        wanted = ("Queue", "Position", "Channel", "Uniqueid", "CallerIDNum", "CallerIDName")
        for headers, joined in self.waiting.values():
            waited = 0
            if joined is not None and self.last_stamp is not None:
                waited = int(self.last_stamp - joined)
            items.append([*((k, v) for k, v in headers if k in wanted), ("Wait", str(waited))])
        return items


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


class FakeAsterisk:
    """``with FakeAsterisk(plan) as fake: ... fake.port``; ``plan[n]`` feeds connection n."""

    def __init__(
        self,
        plan: Sequence[Sequence[Chunk]],
        *,
        username: str = "backend112",
        secret: str = "ttu112secret",
        greeting: bytes = GREETING,
        realtime: bool = False,
        skipped: Sequence[Sequence[Chunk]] = (),
        answer_pings: bool = True,
        close_at_end: bool = True,
        history: Sequence[Chunk] = (),
    ) -> None:
        self.plan = list(plan)
        self.skipped = list(skipped)  # what Asterisk saw between connections n and n+1
        self.username, self.secret = username, secret
        self.greeting = greeting
        self.realtime = realtime
        self.answer_pings = answer_pings
        self.close_at_end = close_at_end  # False: the last connection stays up, like a PBX
        self.received: list[list[tuple[str, str]]] = []  # every action, as parsed
        self.connections = 0
        self.finished = threading.Event()  # the last planned stream has been sent
        self._channels = _Channels()
        for chunk in history:  # what Asterisk saw before anyone connected (a listener was down)
            self._channels.play(chunk.data)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._clients: list[socket.socket] = []

    def __enter__(self) -> FakeAsterisk:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, name="fake-asterisk", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        _close(self._server)  # shutdown wakes the thread blocked in accept()
        for client in self._clients:
            _close(client)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            number = self.connections
            self.connections += 1
            self._clients.append(conn)
            thread = threading.Thread(
                target=self._serve, args=(conn, number), name=f"fake-asterisk-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _connection_lock(self) -> threading.Lock | threading.RLock:
        """Guards one connection's writes; a subclass that feeds every connection from one
        source shares one."""
        return threading.Lock()

    def _serve(self, conn: socket.socket, number: int) -> None:
        lock = self._connection_lock()
        logged_in = threading.Event()
        parser = FrameParser()

        def send(data: bytes) -> None:
            with lock:
                conn.sendall(data)

        try:
            send(self.greeting)
            streamer: threading.Thread | None = None
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                # Asterisk accepts LF-only actions too.
                for action in parser.feed(data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")):
                    self.received.append(action.headers)
                    # Answered under the stream's lock: a list reflects exactly the frames
                    # sent before it, as Asterisk's would.
                    with lock:
                        reply = self._answer(action, logged_in)
                        if reply:
                            conn.sendall(reply)
                    if reply == b"":
                        time.sleep(0.2)  # Asterisk delays a failed login, then hangs up
                        send(_reply("Error", action, Message="Authentication failed"))
                        return
                    if reply is None:
                        continue
                    if (action.get("Action") or "").lower() == "logoff":
                        return
                    if logged_in.is_set() and streamer is None:
                        streamer = threading.Thread(
                            target=self._stream, args=(conn, number, lock), daemon=True
                        )
                        streamer.start()
        except OSError:
            return
        finally:
            conn.close()
            if number >= len(self.plan) - 1:
                self.finished.set()

    def _answer(self, frame: Frame, logged_in: threading.Event) -> bytes | None:
        name = (frame.get("Action") or "").lower()
        if name == "login":
            if frame.get("Username") != self.username or frame.get("Secret") != self.secret:
                return b""
            logged_in.set()
            return _reply("Success", frame, Message="Authentication accepted")
        if not logged_in.is_set():
            return _reply("Error", frame, Message="Permission denied")
        if name == "ping":
            if not self.answer_pings:
                return None  # a wedged Asterisk: the client's deadline must catch it
            return _reply("Success", frame, Ping="Pong", Timestamp=f"{time.time():.6f}")
        if name == "coreshowchannels":
            return self._core_show_channels(frame)
        if name == "queuestatus":
            entries = self._channels.queue_entries()
            return _list_reply(frame, "Queue status will follow", entries, "QueueEntry")
        if name == "logoff":
            return _reply("Goodbye", frame, Message="Thanks for all the fish.")
        return _reply("Error", frame, Message="Invalid/unknown command")

    def _core_show_channels(self, frame: Frame) -> bytes:
        items = []
        for uniqueid, headers in list(self._channels.up.items()):
            wanted = ("Channel", "ChannelState", "CallerIDNum", "Context", "Exten", "Uniqueid")
            item = {k: v for k, v in headers if k in (*wanted, "Linkedid")}
            item.update(self._channels.where.get(uniqueid, {}))
            items.append(list(item.items()))
        return _list_reply(frame, "Channels will follow", items, "CoreShowChannel")

    def _stream(
        self, conn: socket.socket, number: int, lock: threading.Lock | threading.RLock
    ) -> None:
        chunks = self.plan[number] if number < len(self.plan) else []
        start = time.monotonic()
        first_at = next((c.at for c in chunks if c.at is not None), 0.0)
        try:
            for chunk in chunks:
                if self._stopping.is_set():
                    return
                if self.realtime and chunk.at is not None:
                    delay = start + (chunk.at - first_at) - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                with lock:
                    self._channels.play(chunk.data)
                    conn.sendall(chunk.data)
            # Asterisk saw these while nobody listened (a gap), then the connection ends.
            if number < len(self.skipped):
                for chunk in self.skipped[number]:
                    self._channels.play(chunk.data)
        except OSError:
            return
        finally:
            last = number >= len(self.plan) - 1
            if last:
                self.finished.set()
            if self.close_at_end or not last:
                # FIN, not RST: the client must still read everything sent before the end.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_WR)


def _reply(response: str, action: Frame, **headers: str) -> bytes:
    lines = [f"Response: {response}"]
    action_id = action.get("ActionID")
    if action_id is not None:
        lines.append(f"ActionID: {action_id}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _list_reply(
    action: Frame, message: str, items: list[list[tuple[str, str]]], item_event: str
) -> bytes:
    action_id = action.get("ActionID") or ""
    out = _reply("Success", action, EventList="start", Message=message)
    complete = {"CoreShowChannel": "CoreShowChannels", "QueueEntry": "QueueStatus"}.get(
        item_event, item_event
    ) + "Complete"
    for headers in items:
        lines = [f"Event: {item_event}", f"ActionID: {action_id}"]
        lines += [f"{k}: {v}" for k, v in headers]
        out += ("\r\n".join(lines) + "\r\n\r\n").encode()
    out += (
        f"Event: {complete}\r\nActionID: {action_id}\r\nEventList: Complete\r\n"
        f"ListItems: {len(items)}\r\n\r\n"
    ).encode()
    return out


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
