"""The simulated PBX: the fake Asterisk fed with generated calls on a clock, in a process of its
own, plus one FastAGI session per call against the backend's IVR.

Like Asterisk, it does not wait for anyone: calls go on while no listener is connected (what
happens meanwhile is lost to the AMI stream, and lists and logs say what they would), and it
writes the record the soak accounts against (``record.tsv``: Uniqueid, expected outcome) and
Asterisk's own logs of each call (``queue_log``, ``Master.csv``, ``cel.jsonl``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from benchmarks.ivr import env_block, reply
from benchmarks.soak.calls import Played, load_templates, schedule
from callcenter.ami.fake_server import FakeAsterisk
from callcenter.demo.feed import stamped

TICK = 0.01
AGI_AFTER = 0.5  # seconds from a call's first event to its FastAGI session (the IVR's AGI())


# Asterisk queues a manager session's events while the client reads slowly, and drops a client
# that falls too far behind; so do we, at this many bytes waiting.
BACKLOG_LIMIT = 512 * 1024 * 1024


class QueuedSocket:
    """A connection whose writes never block the PBX: queued in order (events and action
    replies alike, so a list reply still follows every event sent before it), written by a
    thread of its own."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.waiting = 0  # bytes queued, not yet written
        self.most_waiting = 0
        self.failed = False
        self._pending: deque[bytes] = deque()
        self._ready = threading.Condition()
        threading.Thread(target=self._write, name="pbx-writer", daemon=True).start()

    def sendall(self, data: bytes) -> None:
        with self._ready:
            if self.failed:
                raise BrokenPipeError("the connection is gone")
            if self.waiting + len(data) > BACKLOG_LIMIT:
                self.failed = True
                self._ready.notify()
                raise BlockingIOError("the client reads too slowly: dropped, as Asterisk would")
            self._pending.append(data)
            self.waiting += len(data)
            self.most_waiting = max(self.most_waiting, self.waiting)
            self._ready.notify()

    def _write(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self.failed:
                    self._ready.wait()
                if self.failed:
                    break
                chunk = b"".join(self._pending)
                self._pending.clear()
            try:
                self.sock.sendall(chunk)
            except OSError:
                with self._ready:
                    self.failed = True
                break
            with self._ready:
                self.waiting -= len(chunk)
        with self._ready:
            self._pending.clear()
        _shut(self.sock)

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def shutdown(self, how: int) -> None:
        with self._ready:
            self.failed = True
            self._ready.notify()
        self.sock.shutdown(how)

    def close(self) -> None:
        with self._ready:
            self.failed = True
            self._ready.notify()
        self.sock.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class LivePbx(FakeAsterisk):
    """A fake Asterisk whose events come from ``emit`` as they happen, sent to the last
    connection that logged in; with none, they only change what the lists will say."""

    def __init__(self, *, username: str, secret: str) -> None:
        super().__init__([], username=username, secret=secret, close_at_end=False)
        self._shared = threading.RLock()  # one lock for the stream, lists and emit
        self._live: QueuedSocket | None = None
        self.dropped_slow = 0  # connections dropped for reading too slowly
        self.most_waiting = 0

    def _connection_lock(self) -> threading.Lock | threading.RLock:
        return self._shared

    def _serve(self, conn: socket.socket, number: int) -> None:
        super()._serve(cast(socket.socket, QueuedSocket(conn)), number)

    def _stream(
        self, conn: socket.socket, number: int, lock: threading.Lock | threading.RLock
    ) -> None:
        with self._shared:
            self._live = cast(QueuedSocket, conn)

    def emit(self, data: bytes) -> None:
        with self._shared:
            self._channels.play(data)
            live = self._live
            if live is None:
                return
            try:
                live.sendall(data)
            except BlockingIOError:
                self.dropped_slow += 1
                self._live = None
            except OSError:
                self._live = None
            self.most_waiting = max(self.most_waiting, live.most_waiting)

    @property
    def connected(self) -> bool:
        """A listener is logged in and gets the events."""
        with self._shared:
            return self._live is not None

    def cut(self) -> bool:
        """The network drops the AMI connection (the listener must reconnect)."""
        with self._shared:
            live, self._live = self._live, None
        if live is None:
            return False
        with contextlib.suppress(OSError):
            live.shutdown(socket.SHUT_RDWR)
        return True


@dataclass
class PbxStats:
    calls: int = 0
    plays: int = 0
    events: int = 0
    agi_served: int = 0
    agi_refused: int = 0
    agi_errors: dict[str, int] = field(default_factory=dict)
    max_lag_ms: float = 0.0
    most_waiting_mib: float = 0.0  # the largest backlog of events queued for the listener
    dropped_slow: int = 0  # connections dropped for reading too slowly


def garbage() -> bytes:
    """Junk a broken PBX or network might send: binary noise, NULs, invalid UTF-8, no colon,
    a frame over the reader's 4 MiB limit, a 1 MiB value, and numbers no column takes."""
    noise = bytes(range(256)) * 4
    big = b"x" * (1 << 20)
    return b"".join(
        [
            b"\x00\xff\xfe garbage without a colon\r\n" + noise + b"\r\n\r\n",
            b"Event: UserEvent\r\nUserEvent: soak\r\nData: " + big * 5 + b"\r\n\r\n",
            b"Event: UserEvent\r\nUserEvent: soak-big\r\nData: " + big + b"\r\n\r\n",
            b"Event: Hangup\r\nChannel: PJSIP/nobody-00000000\r\nUniqueid: 1.1\r\n"
            b"Cause: 99999999999999999999\r\nTimestamp: 1e18\r\n\r\n",
            b"Event: Newchannel\r\nChannel: PJSIP/nobody-00000001\r\nUniqueid: "
            + b"9" * 300
            + b"\r\nContext: operators\r\nExten: 1\r\nChannelState: 4\r\n\r\n",
            b"\r\n\r\n:\r\n: \r\nEvent\r\n\r\n",
        ]
    )


_STATS_LOCK = threading.Lock()


def agi_session(port: int, uniqueid: str, callerid: str, stats: PbxStats) -> None:
    outcome = "served"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(env_block(uniqueid, callerid or "anonymous"))
            with conn.makefile("rb") as reader:
                while line := reader.readline():
                    conn.sendall(reply(line))
    except ConnectionRefusedError:
        outcome = "refused"  # the backend is down (killed): Asterisk queues the caller anyway
    except OSError as exc:
        outcome = type(exc).__name__
    with _STATS_LOCK:
        if outcome == "served":
            stats.agi_served += 1
        elif outcome == "refused":
            stats.agi_refused += 1
        else:
            stats.agi_errors[outcome] = stats.agi_errors.get(outcome, 0) + 1


class Simulator:
    """Plays calls at ``rate`` a second on the PBX until ``stop()``, then finishes those begun."""

    def __init__(self, pbx: LivePbx, folder: Path, rate: float, agi_port: int) -> None:
        self.pbx = pbx
        self.folder = folder
        self.rate = rate
        self.agi_port = agi_port
        self.stats = PbxStats()
        self.stopping = threading.Event()
        self.done = threading.Event()
        self._agi = ThreadPoolExecutor(max_workers=48, thread_name_prefix="agi")

    def run(self) -> None:
        files: dict[str, IO[bytes]] = {
            name: (self.folder / name).open("ab")
            for name in ("record.tsv", "queue_log", "Master.csv", "cel.jsonl")
        }
        heap: list[tuple[float, int, str, bytes]] = []
        order = itertools.count()
        plays = schedule(load_templates(), self.rate, time.time() + 1.0)
        upcoming: Played | None = next(plays)
        try:
            while upcoming is not None or heap:
                now = time.time()
                while upcoming is not None and upcoming.events[0][0] <= now + TICK:
                    if self.stopping.is_set():
                        upcoming = None
                        break
                    self._log(upcoming, files)
                    for at, data in upcoming.events:
                        heapq.heappush(heap, (at, next(order), "ami", data))
                    for uniqueid, caller in upcoming.callers.items():
                        start = upcoming.events[0][0] + AGI_AFTER
                        heapq.heappush(
                            heap, (start, next(order), "agi", f"{uniqueid} {caller}".encode())
                        )
                    upcoming = next(plays)
                out = bytearray()
                while heap and heap[0][0] <= now:
                    at, _, kind, data = heapq.heappop(heap)
                    self.stats.max_lag_ms = max(self.stats.max_lag_ms, (now - at) * 1000)
                    if kind == "agi":
                        uniqueid, _, caller = data.decode().partition(" ")
                        self._agi.submit(agi_session, self.agi_port, uniqueid, caller, self.stats)
                    else:
                        out += stamped(data, now) + b"\r\n\r\n"
                        self.stats.events += 1
                if out:
                    self.pbx.emit(bytes(out))
                time.sleep(max(0.0, TICK - (time.time() - now)))
        finally:
            for handle in files.values():
                handle.close()
            self._agi.shutdown(wait=True)
            self.done.set()

    def snapshot(self) -> PbxStats:
        self.stats.most_waiting_mib = self.pbx.most_waiting / 2**20
        self.stats.dropped_slow = self.pbx.dropped_slow
        return self.stats

    def _log(self, played: Played, files: dict[str, IO[bytes]]) -> None:
        self.stats.plays += 1
        self.stats.calls += len(played.outcomes)
        for uniqueid, outcome in played.outcomes.items():
            files["record.tsv"].write(f"{uniqueid}\t{outcome}\n".encode())
        for name, lines in (
            ("queue_log", played.queue_log),
            ("Master.csv", played.cdr),
            ("cel.jsonl", played.cel),
        ):
            files[name].write(b"".join(line + b"\n" for line in lines))
        for handle in files.values():
            handle.flush()


def serve(commands: Any, folder: str, rate: float, agi_port: int, secret: str) -> None:
    """The PBX process: answers the orchestrator's commands over a multiprocessing pipe."""
    logging.getLogger("callcenter.ami").setLevel(logging.ERROR)  # its own parser skips junk too
    pbx = LivePbx(username="backend112", secret=secret)
    pbx.start()
    try:
        simulator = Simulator(pbx, Path(folder), rate, agi_port)
        commands.send(pbx.port)
        runner = threading.Thread(target=simulator.run, name="simulator", daemon=True)
        while True:
            command = commands.recv()
            if command == "go":  # the backend is up: calls begin
                runner.start()
                commands.send(True)
            elif command == "cut":
                commands.send(pbx.cut())
            elif command == "garbage":
                pbx.emit(garbage())
                commands.send(True)
            elif command == "stats":
                commands.send(simulator.snapshot())
            elif command == "stop":
                simulator.stopping.set()
                simulator.done.wait()
                commands.send(simulator.snapshot())
            elif command == "exit":
                return
    finally:
        pbx.stop()
