"""One caller, looked up by a number in any format: identity, counts by classification, calls."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.calls.service import CallFilters, list_calls
from callcenter.errors import NotFound
from callcenter.models import Call, Caller
from callcenter.phone import CallerNumber, normalise


@dataclass(frozen=True, slots=True)
class CallerHistory:
    number: CallerNumber
    caller: Caller
    calls: list[Call]
    total_calls: int


def caller_history(
    session: Session, *, number: str, region: str, limit: int, offset: int
) -> CallerHistory:
    """The caller row for ``number`` (normalised, so any format finds it) and a page of its calls.

    Withheld and malformed caller IDs are one caller per raw value, as the listener stores them.
    """
    normalised = normalise(number, region)
    caller = session.scalar(select(Caller).where(Caller.number_key == normalised.key))
    if caller is None:
        raise NotFound(f"no calls from {number!r}")
    calls, total = list_calls(
        session, filters=CallFilters(caller_key_id=caller.id), limit=limit, offset=offset
    )
    return CallerHistory(number=normalised, caller=caller, calls=calls, total_calls=total)
