"""The callers table as the store keeps it: a caller's row found or made, and a batch's calls
counted once in each caller's row (one UPDATE a batch for all of them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callcenter.ami.call_rows import clip_text
from callcenter.models import Caller
from callcenter.phone import CallerNumber

_CALLERS: Table = Caller.__table__  # type: ignore[assignment]

_SEEN = bindparam("seen", type_=_CALLERS.c.last_seen_at.type)
COUNT_CALLERS = (
    update(_CALLERS)
    .where(_CALLERS.c.id == bindparam("caller_id"))
    .values(
        call_count=_CALLERS.c.call_count + bindparam("delta"),
        raw_last=func.coalesce(
            bindparam("raw_last", type_=_CALLERS.c.raw_last.type), _CALLERS.c.raw_last
        ),
        last_seen_at=case((_CALLERS.c.last_seen_at < _SEEN, _SEEN), else_=_CALLERS.c.last_seen_at),
    )
)


@dataclass(slots=True)
class CallerCount:
    """What a batch changes in one caller row: calls gained minus lost, and from the calls
    gained, the last raw number and the latest start."""

    caller_id: int
    delta: int = 0
    raw_last: str | None = None
    seen: datetime | None = None

    def gain(self, raw: str | None, seen: datetime) -> None:
        self.delta += 1
        self.raw_last = raw
        if self.seen is None or seen > self.seen:
            self.seen = seen


def _insert(engine_name: str) -> Any:
    return postgresql.insert if engine_name == "postgresql" else sqlite.insert


@lru_cache(maxsize=2)
def _make_callers(dialect_name: str) -> Any:
    """Built once per dialect: new caller rows, RETURNING the ones made (an existing number is
    left alone and returns nothing)."""
    return (
        _insert(dialect_name)(_CALLERS)
        .on_conflict_do_nothing(index_elements=["number_key"])
        .returning(_CALLERS.c.id, _CALLERS.c.number_key)
    )


def caller_row_ids(
    session: Session, dialect_name: str, numbers: Sequence[tuple[CallerNumber, datetime]]
) -> dict[str, int]:
    """``callers.id`` by ``number.key`` for each (number, first seen), its row made if it has
    none: one INSERT for all of a batch's numbers, and one SELECT for those already there.
    A round trip is the costly part on PostgreSQL (about as much as the COPY of a batch's
    events when each new call came from a new number, two each), hence not one per number."""
    rows: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}  # number.key -> the stored key (cut to the column's size)
    for number, seen in numbers:
        key = clip_text(number.key, 160) or ""
        keys[number.key] = key
        rows.setdefault(
            key,
            {
                "number_key": key,
                "e164": number.e164,
                "raw_last": clip_text(number.raw, 128),
                "status": number.status,
                "line_type": number.line_type,
                "region": clip_text(number.region, 128),
                "call_count": 0,
                "first_seen_at": seen,
                "last_seen_at": seen,
            },
        )
    if not rows:
        return {}
    ids: dict[str, int] = {
        key: row_id
        for row_id, key in session.execute(_make_callers(dialect_name), list(rows.values()))
    }
    there = [key for key in rows if key not in ids]
    if there:
        ids.update(
            (key, row_id)
            for row_id, key in session.execute(
                select(_CALLERS.c.id, _CALLERS.c.number_key).where(_CALLERS.c.number_key.in_(there))
            )
        )
    return {raw_key: ids[key] for raw_key, key in keys.items()}
