"""The call-back worklist, derived from the calls table (no hook in the code that writes calls).

A call is on the list when it was abandoned in the IVR or the queue, or was tagged a silent or
ghost call, has a number to call back (withheld callers cannot be), is within the window, has
no later call from the same number, and has no closing attempt (reached or not needed) and
fewer than ``max_attempts`` unanswered ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from callcenter.callbacks.models import CallbackAttempt, CallbackOutcome
from callcenter.errors import Conflict, NotFound
from callcenter.models import Call, Outcome, User

SILENT_REASON = "silent_or_ghost_call"
ABANDONED = (Outcome.abandoned_in_ivr, Outcome.abandoned_in_queue)


@dataclass(frozen=True)
class Item:
    call_id: int
    caller: str
    started_at: datetime
    why: str  # abandoned_in_ivr | abandoned_in_queue | silent_call
    attempts: int
    last_attempt_at: datetime | None


def _open_calls(*, since: datetime, max_attempts: int) -> Select[Call, int, datetime | None]:
    newer = aliased(Call)
    closing = [o for o in CallbackOutcome if o.closes]
    attempts = (
        select(func.count(CallbackAttempt.id))
        .where(CallbackAttempt.call_id == Call.id)
        .scalar_subquery()
    )
    last_attempt = (
        select(func.max(CallbackAttempt.attempted_at))
        .where(CallbackAttempt.call_id == Call.id)
        .scalar_subquery()
    )
    return (
        select(Call, attempts, last_attempt)
        .where(
            Call.started_at >= since,
            Call.caller_e164.is_not(None),
            or_(Call.outcome.in_(ABANDONED), Call.classification_reason == SILENT_REASON),
            ~exists().where(
                and_(newer.caller_e164 == Call.caller_e164, newer.started_at > Call.started_at)
            ),
            ~exists().where(
                and_(CallbackAttempt.call_id == Call.id, CallbackAttempt.outcome.in_(closing))
            ),
            attempts < max_attempts,
        )
        .order_by(Call.started_at, Call.id)
    )


def _item(call: Call, attempts: int, last: datetime | None) -> Item:
    why = call.outcome.value if call.outcome in ABANDONED else "silent_call"
    assert call.caller_e164 is not None  # filtered by the query
    return Item(call.id, call.caller_e164, call.started_at, why, attempts, last)


def worklist(
    session: Session, *, now: datetime, window_hours: int, max_attempts: int
) -> list[Item]:
    query = _open_calls(since=now - timedelta(hours=window_hours), max_attempts=max_attempts)
    return [_item(call, n, last) for call, n, last in session.execute(query)]


def record_attempt(
    session: Session,
    *,
    user: User,
    call_id: int,
    outcome: CallbackOutcome,
    note: str | None,
    now: datetime,
    window_hours: int,
    max_attempts: int,
) -> tuple[CallbackAttempt, bool]:
    """Record an attempt on an open item; return it and whether the item is still open."""
    if session.get(Call, call_id) is None:
        raise NotFound(f"no call {call_id}", call_id=call_id)
    query = _open_calls(since=now - timedelta(hours=window_hours), max_attempts=max_attempts)
    if session.execute(query.where(Call.id == call_id)).first() is None:
        raise Conflict(f"call {call_id} is not on the call-back worklist", call_id=call_id)
    attempt = CallbackAttempt(
        call_id=call_id, outcome=outcome, note=note, attempted_by_id=user.id, attempted_at=now
    )
    session.add(attempt)
    session.flush()
    still_open = session.execute(query.where(Call.id == call_id)).first() is not None
    return attempt, still_open
