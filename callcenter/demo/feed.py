"""A simulated PBX for `make demo`: recorded Asterisk calls replayed in a loop, shifted to now.

The recordings (``traces/``, events of real calls on a real Asterisk 22, cut from the shared
traces) are played one after another, overlapping, for as long as the demo runs. Each replay
gets fresh identities (Uniqueid, Linkedid, channel names, bridge ids) so it is a new call, and
each event a ``Timestamp`` of the moment it is sent, as Asterisk sends with
``timestampevents = yes``.

>>> ids = Renamer(1_900_000_000)
>>> ids.rename(b"Uniqueid: 1795830841.2\\r\\nChannel: PJSIP/op2-00000003")
b'Uniqueid: 1900000000.1\\r\\nChannel: PJSIP/op2-b3000002'
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from callcenter.ami.fake_server import Chunk

TRACES = Path(__file__).parent / "traces"
# A new recording starts this long after the previous one's first call began.
STAGGER_SECONDS = 14.0

_ID = re.compile(rb"((?:[A-Za-z]*Uniqueid|[A-Za-z]*Linkedid|Uniqueid\d*): )(\d+\.\d+)", re.I)
_CHANNEL = re.compile(rb"((?:PJSIP|SIP|IAX2|Local)/[\w.@]+?-)([0-9a-f]{8})\b")
_BARE_ID = re.compile(rb"(?<![\d.])\d{10}\.\d+(?![\d.])")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Frame:
    data: bytes  # one event, without its blank-line terminator
    at: float  # seconds from the recording's start


@dataclass(frozen=True)
class Trace:
    name: str
    frames: list[Frame]

    @property
    def first_call_at(self) -> float:
        return next((f.at for f in self.frames if f.data.startswith(b"Event: Newchannel")), 0.0)

    @classmethod
    def load(cls, folder: Path) -> Trace:
        raw = (folder / "events.raw").read_bytes()
        frames = []
        for line in (folder / "events.tsv").read_text().splitlines()[1:]:
            offset, length, at = line.split("\t")
            frames.append(Frame(raw[int(offset) : int(offset) + int(length)], float(at)))
        return cls(folder.name, frames)


class Renamer:
    """Gives one replay of a recording identities of its own, the same ones throughout.

    ``epoch`` (the replay's start, in seconds) leads its Uniqueids, as Asterisk's do; two replays
    never share one, even when they start within the same second.
    """

    _last_epoch = 0
    _lock = threading.Lock()

    def __init__(self, epoch: int) -> None:
        with Renamer._lock:
            epoch = max(epoch, Renamer._last_epoch + 1)
            Renamer._last_epoch = epoch
        self.epoch = epoch
        self._ids: dict[bytes, bytes] = {}
        self._channels: dict[bytes, bytes] = {}
        self._uuids: dict[bytes, bytes] = {}
        self._sequence = itertools.count(1)

    def rename_id(self, old: bytes) -> bytes:
        """The replay's identity for a recorded Uniqueid or Linkedid (the same one each time:
        Asterisk's own logs name calls by these too)."""
        new = self._ids.get(old)
        if new is None:
            new = self._ids[old] = f"{self.epoch}.{next(self._sequence)}".encode()
        return new

    def _channel(self, old: bytes) -> bytes:
        new = self._channels.get(old)
        if new is None:
            number = next(self._sequence) % 0x10000
            new = self._channels[old] = f"{self.epoch % 0x10000:04x}{number:04x}".encode()
        return new

    def _uuid(self, old: bytes) -> bytes:
        new = self._uuids.get(old)
        if new is None:
            new = self._uuids[old] = str(uuid.uuid4()).encode()
        return new

    def apply(
        self, parts: list[Part], more: dict[str, Callable[[bytes], bytes]] | None = None
    ) -> bytes:
        """Text cut by ``identity_parts``, with this replay's identities (``more``: what to put
        for parts of other kinds)."""
        rename = {
            "id": self.rename_id,
            "channel": self._channel,
            "uuid": self._uuid,
            **(more or {}),
        }
        return b"".join(p if isinstance(p, bytes) else rename[p[0]](p[1]) for p in parts)

    def rename(self, data: bytes) -> bytes:
        return self.apply(identity_parts(data))


# Literal text, or (kind, recorded identity) to be renamed.
Part: TypeAlias = bytes | tuple[str, bytes]


def identity_parts(data: bytes, *, bare_ids: bool = False) -> list[Part]:
    """``data`` cut at its identities (Uniqueids and Linkedids, channel suffixes, bridge ids).

    Cut once per recording, each replay renames with a join instead of three regular
    expressions (a simulated PBX playing 50 calls a second needs that).

    >>> identity_parts(b"Uniqueid: 1795830841.2 PJSIP/op2-00000003")
    [b'Uniqueid: ', ('id', b'1795830841.2'), b' PJSIP/op2-', ('channel', b'00000003'), b'']

    ``bare_ids``: Uniqueids without a header name too (queue_log, CDR and CEL lines).
    """
    spans: list[tuple[int, int, str]] = []
    patterns = [("id", _ID, 2), ("channel", _CHANNEL, 2), ("uuid", _UUID, 0)]
    if bare_ids:
        patterns.append(("id", _BARE_ID, 0))
    for kind, pattern, group in patterns:
        spans += [(m.start(group), m.end(group), kind) for m in pattern.finditer(data)]
    parts: list[Part] = []
    at = 0
    for start, end, kind in sorted(spans):
        if start < at:
            continue  # inside an identity already cut
        parts += [data[at:start], (kind, data[start:end])]
        at = end
    parts.append(data[at:])
    return parts


def stamped(data: bytes, when: float) -> bytes:
    first, sep, rest = data.partition(b"\r\n")
    return first + sep + f"Timestamp: {when:.6f}".encode() + (sep + rest if rest else b"")


def load_all(folder: Path = TRACES) -> list[Trace]:
    return [Trace.load(p) for p in sorted(folder.iterdir()) if (p / "events.raw").exists()]


class Loop:
    """The endless, paced stream for FakeAsterisk(realtime=True): iterable again and again.

    ``rounds`` limits the number of recordings played (None: forever); ``speed`` above 1 plays
    them faster than recorded (the tests do, to save time).
    """

    def __init__(
        self, traces: list[Trace], *, rounds: int | None = None, speed: float = 1.0
    ) -> None:
        self.traces = traces
        self.rounds = rounds
        self.speed = speed

    def __iter__(self) -> Iterator[Chunk]:
        wall0 = time.time()
        heap: list[tuple[float, int, bytes]] = []  # (at, order, data) of the replays under way
        order = itertools.count()
        start = 0.0
        played = 0
        source = itertools.cycle(self.traces)
        while True:
            # Schedule the next recording once the stream reaches its start.
            while (self.rounds is None or played < self.rounds) and (
                not heap or heap[0][0] >= start
            ):
                trace = next(source)
                renamer = Renamer(int(wall0 + start))
                for frame in trace.frames:
                    at = max(start + (frame.at - trace.first_call_at) / self.speed, start)
                    heap.append((at, next(order), renamer.rename(frame.data)))
                heap.sort()
                start += STAGGER_SECONDS / self.speed
                played += 1
            if not heap:
                return
            at, _, data = heap.pop(0)
            yield Chunk(stamped(data, wall0 + at) + b"\r\n\r\n", at)
