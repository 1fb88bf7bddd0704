"""Generated calls of the traces' shape: each a recorded call (PJSIP traces 20-24) with fresh
identities (the demo's Renamer) and its Asterisk logs (queue_log, cdr_csv, cel_custom) moved to
the moment it is played, so `callcenter reconcile` can fill what an AMI gap hid.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.ami import TRACES
from callcenter.ami.fake_server import Recording
from callcenter.demo.feed import TRACES as DEMO_TRACES
from callcenter.demo.feed import Part, Renamer, identity_parts

# expected.json's words → the outcome the backend stores (tests/ami/helpers.py has the same).
OUTCOMES = {
    "answered": "answered",
    "abandoned": "abandoned_in_queue",
    "hangup_in_ivr": "abandoned_in_ivr",
    "queue_timeout": "unanswered",
}
_QUEUE_LOG_TIME = re.compile(rb"^\d{10}(?=\|)")
_CLOCK = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?")
_STAMP = re.compile(rb"\r\nTimestamp: [0-9.]+")


@dataclass(frozen=True)
class Template:
    """One recorded trace: its events (seconds from its first event), logs and outcomes, each
    cut once at the identities and clocks every play changes."""

    name: str
    events: list[tuple[float, list[Part]]]
    started: float  # the recording's wall clock at its first event
    queue_log: list[list[Part]]
    cdr: list[list[Part]]
    cel: list[list[Part]]
    outcomes: dict[str, str]  # recorded Uniqueid → outcome

    @classmethod
    def load(cls, folder: Path) -> Template:
        frames = Recording.load(folder, stamp=True).frames
        events = [c for c in frames if c.data.startswith(b"Event: ") and b"ActionID" not in c.data]
        first = float(re.findall(rb"Timestamp: ([0-9.]+)", events[0].data)[0])
        start_at = events[0].at or 0.0
        expected = json.loads((folder / "expected.json").read_text())
        callers = _callers([c.data for c in events])
        return cls(
            name=folder.name,
            events=[
                (
                    (c.at or 0.0) - start_at,
                    _cut(identity_parts(_STAMP.sub(b"", c.data[:-4])), callers, "caller"),
                )
                for c in events
            ],
            started=first,
            queue_log=_log(folder / "queue_log", _QUEUE_LOG_TIME, "epoch", callers),
            cdr=_log(folder / "cdr.csv", _CLOCK, "clock", callers),
            cel=_log(folder / "cel.jsonl", _CLOCK, "clock", callers),
            outcomes={c["uniqueid"]: OUTCOMES[c["outcome"]] for c in expected["calls"]},
        )


def _callers(events: list[bytes]) -> re.Pattern[bytes]:
    """The recorded callers' numbers (each play gets callers of its own, as a real day has
    thousands: the caller cache and look-ups see that many)."""
    numbers = {
        m[1]
        for data in events
        if data.startswith(b"Event: Newchannel\r\n")
        for m in [re.search(rb"\r\nCallerIDNum: ([0-9+]{6,})\r\n", data)]
        if m
    }
    return re.compile(b"|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True)))


def _log(
    path: Path, clock: re.Pattern[bytes], kind: str, callers: re.Pattern[bytes]
) -> list[list[Part]]:
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    return [
        _cut(_cut(identity_parts(line, bare_ids=True), clock, kind), callers, "caller")
        for line in lines
    ]


def _cut(parts: list[Part], pattern: re.Pattern[bytes], kind: str) -> list[Part]:
    """The literal parts cut further at ``pattern`` (a clock every play moves)."""
    out: list[Part] = []
    for part in parts:
        if not isinstance(part, bytes):
            out.append(part)
            continue
        at = 0
        for match in pattern.finditer(part):
            out += [part[at : match.start()], (kind, match[0])]
            at = match.end()
        out.append(part[at:])
    return out


def load_templates() -> list[Template]:
    """The traces the demo plays (PJSIP, every outcome), from the shared recordings."""
    return [Template.load(TRACES / p.name) for p in sorted(DEMO_TRACES.iterdir()) if p.is_dir()]


@dataclass
class Played:
    """One play of a template: what the PBX sends and logs, and what must come of it."""

    events: list[tuple[float, bytes]]  # (wall time, frame without Timestamp or terminator)
    queue_log: list[bytes]
    cdr: list[bytes]
    cel: list[bytes]
    outcomes: dict[str, str]  # Uniqueid → expected outcome
    callers: dict[str, str] = field(default_factory=dict)  # Uniqueid → caller number


def caller_number(recorded: bytes, play: int) -> bytes:
    """A caller of the play's own, in the recorded number's form.

    >>> caller_number(b"+6281339112233", 7), caller_number(b"081234567890", 7)
    (b'+62813100000007', b'0813100000007')
    """
    national = b"0813" + f"{1_000_000_00 + play % 100_000_000:09d}".encode()
    return b"+62" + national[1:] if recorded.startswith(b"+62") else national


_plays = itertools.count()


def play(template: Template, at: float) -> Played:
    renamer = Renamer(int(at))
    shift = at - template.started
    number = next(_plays)

    def clock(text: bytes) -> bytes:
        moved = datetime.fromisoformat(text.decode()).replace(tzinfo=UTC) + timedelta(seconds=shift)
        return moved.strftime(
            "%Y-%m-%d %H:%M:%S.%f" if b"." in text else "%Y-%m-%d %H:%M:%S"
        ).encode()

    moved = {
        "clock": clock,
        "epoch": lambda text: str(int(int(text) + shift)).encode(),
        "caller": lambda recorded: caller_number(recorded, number),
    }
    events = [(at + offset, renamer.apply(parts, moved)) for offset, parts in template.events]
    outcomes = {renamer.rename_id(u.encode()).decode(): o for u, o in template.outcomes.items()}
    return Played(
        events=events,
        queue_log=[renamer.apply(line, moved) for line in template.queue_log],
        cdr=[renamer.apply(line, moved) for line in template.cdr],
        cel=[renamer.apply(line, moved) for line in template.cel],
        outcomes=outcomes,
        callers={u: _caller(events, u) for u in outcomes},
    )


def _caller(events: list[tuple[float, bytes]], uniqueid: str) -> str:
    marker = f"\r\nUniqueid: {uniqueid}\r\n".encode()
    for _, data in events:
        if data.startswith(b"Event: Newchannel\r\n") and marker in data + b"\r\n":
            found = re.search(rb"\r\nCallerIDNum: ([^\r]*)", data)
            return found[1].decode("latin-1") if found else ""
    return ""


def schedule(templates: list[Template], rate: float, start: float) -> Iterator[Played]:
    """Plays of the templates in turn, ``rate`` calls a second from ``start`` on."""
    at = start
    while True:
        for template in templates:
            yield play(template, at)
            at += len(template.outcomes) / rate
