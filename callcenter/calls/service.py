"""Call records: listing, detail, and the operator's classification with its history.

The AMI listener is the only writer of the telephony fields; this module writes only the
classification fields, the classification history and the caller's per-classification counts.
Keyword-only functions; the request's session commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from callcenter.calls.schemas import ClassificationFilter
from callcenter.db import utcnow
from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.models import Call, Caller, Classification, ClassificationChange, Outcome, User
from callcenter.phone import normalise

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
    region: str = field(default="ID")

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


def get_call(session: Session, *, call_id: int) -> Call:
    """The call with its raw events and classification history (and who made each change)."""
    call = session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.events),
            selectinload(Call.history).joinedload(ClassificationChange.changed_by),
        )
    )
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


def classify_call(
    session: Session,
    *,
    call_id: int,
    user: User,
    classification: Classification,
    reason: str | None,
    note: str | None,
    expected_versions: Sequence[int] = (),
    allowed_reasons: Sequence[str],
) -> Call:
    """Set the operator's classification of a call, record the change, update caller counts.

    ``expected_versions`` are the versions the client says it read (If-Match and/or the body);
    each must be the current one, else Conflict and nothing changes. A request that changes
    nothing (same classification, reason and note) is accepted and writes nothing.
    """
    if reason is not None and reason not in allowed_reasons:
        raise InvalidInput(
            f"reason {reason!r} is not one of the allowed reasons: {', '.join(allowed_reasons)}",
            allowed=list(allowed_reasons),
        )
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    stale = [v for v in expected_versions if v != call.version]
    if stale:
        raise Conflict(
            f"call {call_id} changed since it was read (version {stale[0]}, now {call.version}): "
            "read it again and retry",
            current_version=call.version,
        )
    old, old_reason = call.classification, call.classification_reason
    if (old, old_reason, call.classification_note) == (classification, reason, note):
        return call

    now = utcnow()
    call.classification = classification
    call.classification_reason = reason
    call.classification_note = note
    call.classified_by_id = user.id
    call.classified_at = now
    session.add(
        ClassificationChange(
            call_id=call.id,
            changed_by_id=user.id,
            changed_at=now,
            old_classification=old,
            new_classification=classification,
            old_reason=old_reason,
            new_reason=reason,
            note=note,
        )
    )
    try:
        # The UPDATE carries "WHERE version = <read version>" (version_id_col): a concurrent
        # writer in between makes it match no row.
        session.flush()
    except StaleDataError as exc:
        raise Conflict(
            f"call {call_id} changed while it was being classified: read it again and retry"
        ) from exc
    if call.caller_key_id is not None and old != classification:
        _move_caller_count(session, caller_id=call.caller_key_id, old=old, new=classification)
    return call


def _move_caller_count(
    session: Session, *, caller_id: int, old: Classification | None, new: Classification
) -> None:
    # Relative updates in SQL: concurrent classifications of one caller's calls cannot lose counts.
    values = {COUNT_COLUMNS[new].key: COUNT_COLUMNS[new] + 1}
    if old is not None:
        values[COUNT_COLUMNS[old].key] = COUNT_COLUMNS[old] - 1
    session.execute(update(Caller).where(Caller.id == caller_id).values(values))
