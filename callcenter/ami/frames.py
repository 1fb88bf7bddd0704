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
from typing import Any

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


class Frame:
    """One AMI message: headers in wire order, with the exact bytes it came from.

    An event read off the wire is kept as its text and looked up in place (``get`` finds the
    line): the listener asks an event for a few headers, and splitting every one of its ~20
    lines into strings and tuples was most of the cost of reading it. ``headers`` splits them
    when someone asks for them all.
    """

    __slots__ = ("_first", "_headers", "_text", "junk", "raw")
    # _first: the first value of each key (all of them once split; a text's looked-up ones)

    def __init__(
        self,
        headers: list[tuple[str, str]] | None = None,
        raw: bytes = b"",
        junk: list[str] | None = None,
        *,
        text: str | None = None,
    ) -> None:
        self._headers = headers if headers is not None or text is not None else []
        self._text = text
        self.raw = raw
        self.junk = junk if junk is not None else []
        self._first: dict[str, str | None] | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        headers = self._headers
        if headers is None:
            assert self._text is not None
            headers, self.junk = _split_headers(self._text.split("\r\n"))
            self._headers = headers
            self._first = None  # it held looked-up values only; _index builds the whole
        return headers

    @property
    def text(self) -> str:
        """The frame as text, its lines joined by CRLF (what ``call_events.raw`` stores)."""
        text = self._text
        if text is None:
            text = self._text = "\r\n".join(f"{k}: {v}" for k, v in self.headers)
        return text

    def _index(self) -> dict[str, str | None]:
        first = self._first
        if first is None:
            # reversed: the first occurrence of a repeated key is the one that stays.
            first = self._first = dict(reversed(self.headers))
        return first

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (Asterisk's own header comes before user headers)."""
        if self._headers is None:
            # Looked up in the text; each key once (the listener asks for Uniqueid ~4 times).
            seen = self._first
            if seen is None:
                seen = self._first = {}
            value = seen.get(key, _UNSEEN)
            if value is _UNSEEN:
                assert self._text is not None
                value = seen[key] = _find(self._text, key)
            return default if value is None else value
        return self._index().get(key, default)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.headers if k == key]

    @property
    def name(self) -> str:
        """The Event name, or ``Response: <value>``'s value for replies."""
        return self.get("Event") or self.get("Response") or ""

    @property
    def is_event(self) -> bool:
        return self._first_key() == "Event"

    @property
    def is_response(self) -> bool:
        return self._first_key() == "Response"

    def _first_key(self) -> str | None:
        if self._headers is None:
            assert self._text is not None
            return self._text[: self._text.find(":")]
        return self._headers[0][0] if self._headers else None

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def digest(self) -> str:
        """A stable hash of the frame's bytes: the same event delivered twice has the same one."""
        return hashlib.blake2b(self.raw, digest_size=16).hexdigest()

    @property
    def dedup_key(self) -> str:
        """What the store keeps an event once by, whatever way it arrived: the event's
        ``Uniqueid``, then a digest of its text without the ``Timestamp`` line. Asterisk adds
        that line only with ``timestampevents = yes``, so a replay with or without it is the
        same event (the listener numbers repeats of one key: see ``callcenter.ami.identity``).
        A Uniqueid is the call's start time, so keys grow with time and the unique index takes
        each insert near its end (with the digest alone each insert landed on a random page,
        and SQLite's commits took three times longer once the table held 600,000 events).

        >>> a = Frame([("Event", "Hangup"), ("Uniqueid", "1795828504.2")])
        >>> b = Frame([("Event", "Hangup"), ("Timestamp", "1795828504.032591"),
        ...            ("Uniqueid", "1795828504.2")])
        >>> a.dedup_key == b.dedup_key, a.dedup_key
        (True, '1795828504.2:8152c012b45c27d602ac9baba3f6c01e')
        """
        return event_key(self.text, self.get("Uniqueid"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.headers, self.raw) == (other.headers, other.raw)

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass it replaced

    def __repr__(self) -> str:
        return f"Frame({self.headers!r}, raw={self.raw!r})"


KEY_PREFIX_MAX = 24  # "1795828504.32" is 13; with ":", the digest and "#n", within String(64)


def event_key(text: str, uniqueid: str | None) -> str:
    """``Frame.dedup_key`` of a frame stored as ``text`` (a migration rekeys rows with it)."""
    start = text.find("\r\nTimestamp:")
    if start >= 0:
        end = text.find("\r\n", start + 2)
        text = text[:start] if end < 0 else text[:start] + text[end:]
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    if uniqueid and len(uniqueid) <= KEY_PREFIX_MAX:
        return f"{uniqueid}:{digest}"
    return digest


_UNSEEN: Any = object()
_NEEDLES: dict[str, tuple[str, str]] = {}


def _find(text: str, key: str) -> str | None:
    """The value on the first ``key:`` line of ``text``, as ``parse_frame`` would read it."""
    needles = _NEEDLES.get(key)
    if needles is None:
        needles = _NEEDLES[key] = (key + ":", "\r\n" + key + ":")
    first, later = needles
    if text.startswith(first):
        start = len(first)
    else:
        at = text.find(later)
        if at < 0:
            return None
        start = at + len(later)
    if text.startswith(" ", start):
        start += 1
    end = text.find("\r\n", start)
    return text[start:] if end < 0 else text[start:end]


def parse_frame(block: bytes) -> Frame:
    """Parse one frame's bytes (without the blank-line terminator)."""
    try:
        lines = block.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        # Only the lines that are not UTF-8 are read as Latin-1 (keys are ASCII).
        lines = [decode_value(line) for line in block.split(b"\r\n")]
    headers, junk = _split_headers(lines)
    return Frame(headers, raw=block, junk=junk)


def headers_of(text: str) -> list[tuple[str, str]]:
    """The headers of a frame stored as text (``call_events.raw``)."""
    return _split_headers(text.split("\r\n"))[0]


def _split_headers(lines: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
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
    return headers, junk


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
    it, with :func:`log_junk`). None: the block was all debris.

    An event that starts as Asterisk starts one and is UTF-8 is kept as text, looked up in
    place (see :class:`Frame`); a line in it that is not a header stays in its text, unlogged,
    and no lookup sees it. Anything else is parsed here, and its debris dropped and reported."""
    if block.startswith(b"Event: "):
        try:
            return Frame(raw=block, text=block.decode("utf-8")), False
        except UnicodeDecodeError:
            pass  # Latin-1 lines: parse_frame reads them one by one
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
