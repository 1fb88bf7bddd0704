"""What the live queue shows: the calls not yet ended, and whether each caller is flagged.

The board's rows have the shape of the live stream's messages (callcenter.ami.runtime
.live_message) plus ``flagged``, so the page treats a snapshot row and a pushed change alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from callcenter.models import Call, Caller, Outcome

LIVE = [o for o in Outcome if not o.is_final]
BOARD_LIMIT = 200
# How long a caller's prank flag is trusted before it is read again.
FLAG_TTL_SECONDS = 60.0


# The outcomes are the enum's own constants, never input. (SQLAlchemy drops index hints for
# SQLite, hence the text.)
_SQLITE_LIVE_IDS = text(
    "SELECT id FROM calls INDEXED BY ix_calls_outcome WHERE outcome IN ("
    + ", ".join(f"'{o.value}'" for o in LIVE)
    + ") LIMIT :n"
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def row(call: Call, flagged: bool) -> dict[str, Any]:
    return {
        "type": "call",
        "pbx": call.pbx,
        "uniqueid": call.uniqueid,
        "linkedid": call.linkedid,
        "outcome": call.outcome.value,
        "caller_id_raw": call.caller_id_raw,
        "caller_id_name": call.caller_id_name,
        "caller_e164": call.caller_e164,
        "caller_id_private": call.caller_id_private,
        "queue": call.queue,
        "queue_position": call.queue_position,
        "operator": call.operator,
        "operator_interface": call.operator_interface,
        "started_at": _iso(call.started_at),
        "queued_at": _iso(call.queued_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds,
        "flagged": flagged,
    }


def flagged_numbers(session: Session, numbers: Iterable[str], threshold: int) -> set[str]:
    """The E.164 numbers among ``numbers`` tagged prank at least ``threshold`` times."""
    wanted = sorted(set(numbers))
    if not wanted:
        return set()
    found = session.scalars(
        select(Caller.e164).where(Caller.e164.in_(wanted), Caller.prank_count >= threshold)
    )
    return {n for n in found if n is not None}


def snapshot(session: Session, *, threshold: int) -> list[dict[str, Any]]:
    """The live calls now, oldest first (the longest wait on top).

    Unordered in SQL, sorted here: ordered by start time, a database walks the start-time index
    through every call ever made to find the few live ones (1.5 s on a million calls). SQLite,
    whose statistics see four outcomes in a million rows but not that the live ones are rare,
    is told to use the outcome index (else it scans the table: 1 s instead of 0.5 ms).
    """
    if session.get_bind().dialect.name == "sqlite":
        ids = list(session.scalars(_SQLITE_LIVE_IDS, {"n": BOARD_LIMIT}))
    else:
        ids = list(
            session.scalars(select(Call.id).where(Call.outcome.in_(LIVE)).limit(BOARD_LIMIT))
        )
    found: list[Call] = list(session.scalars(select(Call).where(Call.id.in_(ids)))) if ids else []
    calls = sorted(found, key=lambda c: (c.queued_at or c.started_at, c.id))
    flagged = flagged_numbers(session, (c.caller_e164 for c in calls if c.caller_e164), threshold)
    return [row(c, c.caller_e164 in flagged) for c in calls]


def recent(session: Session, *, limit: int = 15) -> list[Call]:
    """The latest calls, newest first (no count of all calls: the table may hold millions)."""
    query = select(Call).order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)
    return list(session.scalars(query))


class FlagCache:
    """Prank flags of recent callers, so a pushed change is marked without a query each time."""

    def __init__(self, ttl: float = FLAG_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[bool, float]] = {}

    def missing(self, numbers: Iterable[str]) -> set[str]:
        now = time.monotonic()
        return {n for n in numbers if (k := self._known.get(n)) is None or k[1] < now}

    def store(self, looked_up: Iterable[str], flagged: set[str]) -> None:
        expires = time.monotonic() + self.ttl
        if len(self._known) > 10_000:
            self._known.clear()
        for number in looked_up:
            self._known[number] = (number in flagged, expires)

    def mark(self, message: dict[str, Any]) -> dict[str, Any]:
        number = message.get("caller_e164")
        known = self._known.get(number) if isinstance(number, str) else None
        return {**message, "flagged": bool(known and known[0])}
