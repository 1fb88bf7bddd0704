"""Call records: listing, detail, and the operator's classification with its history.

The AMI listener is the only writer of the telephony fields; this module writes only the
classification fields, the classification history and the caller's per-classification counts.
Keyword-only functions; the request's session commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Update,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, selectinload

from callcenter.calls.schemas import CallSummary, ClassificationFilter
from callcenter.db import AnyRow, utcnow
from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.models import (
    Base,
    Call,
    Caller,
    Classification,
    ClassificationChange,
    Outcome,
    User,
)
from callcenter.phone import normalise

# The tables themselves, for the hot path's plain SQL statements (no ORM unit of work).
CALLS = Base.metadata.tables[Call.__tablename__]
CALLERS = Base.metadata.tables[Caller.__tablename__]
CHANGES = Base.metadata.tables[ClassificationChange.__tablename__]
USERS = Base.metadata.tables[User.__tablename__]

# The Caller column counting each classification.
COUNT_COLUMNS = {
    Classification.emergency: Caller.emergency_count,
    Classification.prank: Caller.prank_count,
    Classification.non_emergency: Caller.non_emergency_count,
}


@dataclass(frozen=True, slots=True)
class CallFilters:
    started_from: datetime | None = None
    started_to: datetime | None = None
    outcomes: Sequence[Outcome] = ()
    classifications: Sequence[ClassificationFilter] = ()
    caller: str | None = None
    operator: str | None = None
    caller_key_id: int | None = None
    region: str = "ID"

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.started_from is not None:
            where.append(Call.started_at >= self.started_from)
        if self.started_to is not None:
            where.append(Call.started_at < self.started_to)
        if self.outcomes:
            where.append(Call.outcome.in_(self.outcomes))
        if self.classifications:
            untagged = ClassificationFilter.untagged
            tagged = [Classification(c.value) for c in self.classifications if c != untagged]
            either = [Call.classification.in_(tagged)] if tagged else []
            if untagged in self.classifications:
                either.append(Call.classification.is_(None))
            where.append(or_(*either))
        if self.caller is not None:
            number = normalise(self.caller, self.region)
            # Any format of a real number finds the same calls; anything else matches as received.
            if number.e164:
                where.append(Call.caller_e164 == number.e164)
            else:
                where.append(Call.caller_id_raw == self.caller)
        if self.operator is not None:
            where.append(Call.operator == self.operator)
        if self.caller_key_id is not None:
            where.append(Call.caller_key_id == self.caller_key_id)
        return where


def list_calls(
    session: Session, *, filters: CallFilters, limit: int, offset: int
) -> tuple[list[Call], int]:
    """One page of matching calls, newest first, and how many match in all."""
    where = filters.conditions()
    total = session.scalar(select(func.count()).select_from(Call).where(*where)) or 0
    page = (
        select(Call)
        .where(*where)
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(page)), total


def get_call(session: Session, *, call_id: int, with_events: bool = False) -> Call:
    """The call with its classification history (and who made each change), and its raw
    events when asked (a call has about 200: most of the answer's size)."""
    history = selectinload(Call.history).joinedload(ClassificationChange.changed_by)
    options = [history, selectinload(Call.events)] if with_events else [history]
    call = session.scalar(select(Call).where(Call.id == call_id).options(*options))
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


def classify_call(
    connection: Connection,
    *,
    call_id: int,
    user_id: int,
    admit: Callable[[AnyRow | None], None],
    classification: Classification,
    reason: str | None,
    note: str | None,
    expected_versions: Sequence[int] = (),
    allowed_reasons: Sequence[str],
) -> Row[Any]:
    """Set the operator's classification of a call, record the change, update caller counts.

    ``admit`` decides whether the user may: it gets the user's ``active`` and ``role`` (or None
    for no such user), read in the same statement as the call. ``expected_versions`` are the
    versions the client says it read (If-Match and/or the body); each must be the current one,
    else Conflict and nothing changes. A request that changes nothing (same classification,
    reason and note) is accepted and writes nothing. Returns the call's summary row as it is now.

    This is the operators' hot path: three statements (four when the caller's counts move),
    each built once at import.
    """
    current = connection.execute(
        _SELECT_USER_AND_CALL, {"user_id": user_id, "call_id": call_id}
    ).one_or_none()
    admit(current)
    assert current is not None
    if reason is not None and reason not in allowed_reasons:
        raise InvalidInput(
            f"reason {reason!r} is not one of the allowed reasons: {', '.join(allowed_reasons)}",
            allowed=list(allowed_reasons),
        )
    if current.call_id is None:
        raise NotFound(f"call {call_id} not found")
    stale = [v for v in expected_versions if v != current.version]
    if stale:
        raise Conflict(
            f"call {call_id} changed since it was read (version {stale[0]}, now "
            f"{current.version}): read it again and retry",
            current_version=current.version,
        )
    old, old_reason = current.classification, current.classification_reason
    if (old, old_reason, current.classification_note) == (classification, reason, note):
        return connection.execute(_SELECT_SUMMARY, {"call_id": call_id}).one()

    now = utcnow()
    updated = connection.execute(
        _UPDATE_CLASSIFICATION,
        {
            "call_id": call_id,
            "read_version": current.version,
            "new_classification": classification,
            "new_reason": reason,
            "new_note": note,
            "user_id": user_id,
            "now": now,
        },
    ).one_or_none()
    if updated is None:
        raise Conflict(
            f"call {call_id} changed while it was being classified: read it again and retry"
        )
    connection.execute(
        _INSERT_CHANGE,
        {
            "call_id": call_id,
            "changed_by_id": user_id,
            "changed_at": now,
            "old_classification": old,
            "new_classification": classification,
            "old_reason": old_reason,
            "new_reason": reason,
            "note": note,
        },
    )
    if current.caller_key_id is not None and old != classification:
        connection.execute(
            _move_caller_count(old, classification), {"caller_id": current.caller_key_id}
        )
    return updated


# The hot path's statements, built once: SQLAlchemy then finds each one's compiled SQL by a
# memoised cache key, instead of building and hashing a new statement on every request.
# The columns of a call summary (what the classification answer shows).
SUMMARY_COLUMNS = [CALLS.c[name] for name in CallSummary.model_fields]
# The user's access and what the classification decides on, in one round trip: one row if the
# user exists (the call's columns are NULL if the call does not), none if not.
_SELECT_USER_AND_CALL = (
    select(
        USERS.c.active,
        USERS.c.role,
        USERS.c.token_generation,
        CALLS.c.id.label("call_id"),
        CALLS.c.version,
        CALLS.c.classification,
        CALLS.c.classification_reason,
        CALLS.c.classification_note,
        CALLS.c.caller_key_id,
    )
    .select_from(USERS.outerjoin(CALLS, CALLS.c.id == bindparam("call_id")))
    .where(USERS.c.id == bindparam("user_id"))
)
_SELECT_SUMMARY = select(*SUMMARY_COLUMNS).where(CALLS.c.id == bindparam("call_id"))
# "WHERE version = <as read>": a writer in between (the AMI listener, another operator) makes
# it match no row, and nothing is written.
_UPDATE_CLASSIFICATION = (
    update(CALLS)
    .where(CALLS.c.id == bindparam("call_id"), CALLS.c.version == bindparam("read_version"))
    .values(
        classification=bindparam("new_classification", type_=CALLS.c.classification.type),
        classification_reason=bindparam("new_reason", type_=CALLS.c.classification_reason.type),
        classification_note=bindparam("new_note", type_=CALLS.c.classification_note.type),
        classified_by_id=bindparam("user_id", type_=CALLS.c.classified_by_id.type),
        classified_at=bindparam("now", type_=CALLS.c.classified_at.type),
        version=CALLS.c.version + 1,
        updated_at=bindparam("now", type_=CALLS.c.updated_at.type),
    )
    .returning(*SUMMARY_COLUMNS)
)
_INSERT_CHANGE = insert(CHANGES)


@cache
def _move_caller_count(old: Classification | None, new: Classification) -> Update:
    """Relative updates in SQL: concurrent classifications of one caller's calls lose no count."""
    new_column = CALLERS.c[COUNT_COLUMNS[new].key]
    values = {new_column: new_column + 1}
    if old is not None:
        old_column = CALLERS.c[COUNT_COLUMNS[old].key]
        values[old_column] = old_column - 1
    return update(CALLERS).where(CALLERS.c.id == bindparam("caller_id")).values(values)
