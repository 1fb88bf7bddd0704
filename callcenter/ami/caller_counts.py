"""The callers table as the store keeps it: a caller's row found or made, and a batch's calls
counted once in each caller's row (one UPDATE a batch for all of them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, bindparam, case, func, select, update
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


def caller_row_id(session: Session, dialect_name: str, number: CallerNumber, seen: datetime) -> int:
    key = clip_text(number.key, 160)
    insert = _insert(dialect_name)
    stmt: Insert = (
        insert(Caller)
        .values(
            number_key=key,
            e164=number.e164,
            raw_last=clip_text(number.raw, 128),
            status=number.status,
            line_type=number.line_type,
            region=clip_text(number.region, 128),
            call_count=0,
            first_seen_at=seen,
            last_seen_at=seen,
        )
        .on_conflict_do_nothing(index_elements=["number_key"])
    )
    session.execute(stmt)
    caller_id: int = session.scalars(select(Caller.id).where(Caller.number_key == key)).one()
    return caller_id
