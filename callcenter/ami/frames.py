"""AMI frames from a byte stream: incremental, faithful, never stuck on bad input.

A frame is ``Key: Value`` lines ending in an empty line. Headers stay in wire order and repeated
keys are kept (``ChanVariable``, the user headers of a ``UserEvent``, ``Output`` of ``Command``).
A value that is not valid UTF-8 is decoded as Latin-1, so no byte is lost (``latin-1`` maps every
byte to one character and back). Lines that are not headers are kept as ``junk`` and logged by
whoever reads the frames; a frame with no header at all is junk as a whole.

>>> parser = FrameParser()
>>> frames = parser.feed(b"Event: Newchannel\\r\\nChannel: PJSIP/trunk-00000002\\r\\n"
...     b"CallerIDNum: 081234567890\\r\\nUniqueid: 1795830841.2\\r\\n\\r\\nEvent: Ha")
>>> frames[0].name, frames[0]["Uniqueid"]
('Newchannel', '1795830841.2')
>>> parser.feed(b"ngup\\r\\nCause: 16\\r\\n\\r\\n")[0]["Cause"]
'16'

Repeated keys and values with colons survive:

>>> f = parse_frame(b"Event: UserEvent\\r\\nUniqueid: 1.1\\r\\nUniqueid: 2.2\\r\\nData: a: b\\r\\n")
>>> f.get_all("Uniqueid"), f["Data"]
(['1.1', '2.2'], 'a: b')

A Latin-1 caller name (invalid UTF-8 on the wire) is kept, not dropped:

>>> parse_frame(b"Event: NewCallerid\\r\\nCallerIDName: Jos\\xe9 Am\\xe1ral\\r\\n")["CallerIDName"]
'José Amáral'
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TERMINATOR = b"\r\n\r\n"
# A frame larger than this without a terminator is garbage: drop it rather than grow forever.
MAX_FRAME_BYTES = 4 * 1024 * 1024


def decode_value(raw: bytes) -> str:
    """UTF-8 when it is UTF-8, else Latin-1 (lossless: every byte is one character).

    >>> decode_value(b"Jos\\xc3\\xa9"), decode_value(b"Jos\\xe9")
    ('José', 'José')
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@dataclass(slots=True)
class Frame:
    """One AMI message: headers in wire order, with the exact bytes it came from."""

    headers: list[tuple[str, str]]
    raw: bytes = b""
    junk: list[str] = field(default_factory=list)
    _first: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def _index(self) -> dict[str, str]:
        first = self._first
        if first is None:
            # reversed: the first occurrence of a repeated key is the one that stays.
            first = self._first = dict(reversed(self.headers))
        return first

    def __getitem__(self, key: str) -> str:
        return self._index()[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (Asterisk's own header comes before user headers)."""
        return self._index().get(key, default)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k == key]

    @property
    def name(self) -> str:
        """The Event name, or ``Response: <value>``'s value for replies."""
        return self.get("Event") or self.get("Response") or ""

    @property
    def is_event(self) -> bool:
        return bool(self.headers) and self.headers[0][0] == "Event"

    @property
    def is_response(self) -> bool:
        return bool(self.headers) and self.headers[0][0] == "Response"

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def digest(self) -> str:
        """A stable hash of the frame's bytes: the same event delivered twice has the same one."""
        return hashlib.blake2b(self.raw, digest_size=16).hexdigest()


def parse_frame(block: bytes) -> Frame:
    """Parse one frame's bytes (without the blank-line terminator)."""
    try:
        lines = block.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        # Only the lines that are not UTF-8 are read as Latin-1 (keys are ASCII).
        lines = [decode_value(line) for line in block.split(b"\r\n")]
    headers: list[tuple[str, str]] = []
    junk: list[str] = []
    append = headers.append
    for line in lines:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            junk.append(line)
            continue
        # AMI puts exactly one space after the colon; an empty value may have none.
        append((key, value.removeprefix(" ")))
    return Frame(headers=headers, raw=block, junk=junk)


class FrameParser:
    """Feed bytes as they arrive, get complete frames back (in order).

    Garbage between frames (binary junk, a stray line without a colon) comes back as a frame
    whose headers are empty; ``frames()`` callers skip and log it. A greeting line such as
    ``Asterisk Call Manager/11.0.0`` is consumed with :meth:`take_line` before feeding frames.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.junk_frames = 0

    def take_line(self) -> bytes | None:
        """The first line, if complete (the AMI greeting is a line, not a frame)."""
        end = self._buffer.find(b"\r\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def push(self, data: bytes) -> None:
        self._buffer += data

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        return list(self.frames())

    def blocks(self) -> Iterator[bytes]:
        """The bytes of each complete frame, in order, unparsed (blank lines before it dropped).

        The AMI reader hands events on like this, so parsing them is the consumer's work and
        the reader thread holds the GIL as little as possible (see ami/README.md)."""
        buffer = self._buffer
        start = 0
        while True:
            end = buffer.find(TERMINATOR, start)
            if end < 0:
                break
            block = bytes(buffer[start:end]).lstrip(b"\r\n")
            start = end + 4
            yield block
        if start:
            del buffer[:start]
        if len(buffer) > MAX_FRAME_BYTES:
            log.error("dropped %d bytes without a frame terminator", len(buffer))
            self.junk_frames += 1
            buffer.clear()

    def frames(self) -> Iterator[Frame]:
        for block in self.blocks():
            frame, junk = read_frame(block)
            if junk:
                self.junk_frames += 1
                log_junk(block)
            if frame is not None:
                yield frame


def read_frame(block: bytes) -> tuple[Frame | None, bool]:
    """One frame's bytes as a Frame, and whether debris was dropped from it (the caller logs
    it, with :func:`log_junk`). None: the block was all debris."""
    frame = parse_frame(block)
    if not frame.junk and frame.headers and frame.headers[0][0] in _FIRST_KEYS:
        return frame, False
    # Junk glued in front of a real frame: keep the frame, drop the junk.
    return _trim_leading_junk(frame), True


def log_junk(block: bytes) -> None:
    log.warning("skipped garbage in the AMI stream: %r", block[:80])


_FIRST_KEYS = ("Event", "Response", "Action")


def _trim_leading_junk(frame: Frame) -> Frame | None:
    """Frames start with Event/Response/Action; anything before is debris. None: all debris."""
    for index, (key, value) in enumerate(frame.headers):
        if key in _FIRST_KEYS:
            return Frame(headers=frame.headers[index:], raw=frame.raw)
        for first in _FIRST_KEYS:
            if key.endswith(first):  # binary debris glued to the first line
                return Frame(headers=[(first, value), *frame.headers[index + 1 :]], raw=frame.raw)
    return None
