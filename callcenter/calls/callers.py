"""One caller, looked up by a number in any format: identity, counts by classification, calls."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.calls.service import CallFilters, list_calls
from callcenter.errors import NotFound
from callcenter.models import Call, Caller, CallerIdStatus, Classification
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
    A withheld value (``anonymous``) has no caller row (the listener counts nobody under it):
    its calls are found by the raw value and counted from them.
    """
    normalised = normalise(number, region)
    caller = session.scalar(select(Caller).where(Caller.number_key == normalised.key))
    if caller is None and normalised.status is CallerIdStatus.withheld:
        return _withheld_history(session, normalised, limit=limit, offset=offset)
    if caller is None:
        raise NotFound(f"no calls from {number!r}")
    calls, total = list_calls(
        session, filters=CallFilters(caller_key_id=caller.id), limit=limit, offset=offset
    )
    return CallerHistory(number=normalised, caller=caller, calls=calls, total_calls=total)


def _withheld_history(
    session: Session, number: CallerNumber, *, limit: int, offset: int
) -> CallerHistory:
    raw = number.raw
    counts = dict(
        session.execute(
            select(Call.classification, func.count())
            .where(Call.caller_id_raw == raw)
            .group_by(Call.classification)
        ).all()
    )
    if not counts:
        raise NotFound(f"no calls from {raw!r}")
    first, last = session.execute(
        select(func.min(Call.started_at), func.max(Call.started_at)).where(
            Call.caller_id_raw == raw
        )
    ).one()
    caller = Caller(  # not stored: the figures of this raw value, read from its calls
        number_key=number.key,
        raw_last=raw,
        status=number.status,
        call_count=sum(counts.values()),
        emergency_count=counts.get(Classification.emergency, 0),
        prank_count=counts.get(Classification.prank, 0),
        non_emergency_count=counts.get(Classification.non_emergency, 0),
        first_seen_at=first,
        last_seen_at=last,
    )
    calls, total = list_calls(session, filters=CallFilters(caller=raw), limit=limit, offset=offset)
    return CallerHistory(number=number, caller=caller, calls=calls, total_calls=total)
