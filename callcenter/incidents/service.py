"""Incidents for emergency calls, agency assignments and their follow-up. Services never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.incidents import agencies
from callcenter.incidents.followup import (
    FollowUp,
    ReasonRequired,
    TransitionRefused,
    check_transition,
)
from callcenter.incidents.models import Agency, Assignment, AssignmentChange, Incident
from callcenter.localtime import local_day
from callcenter.models import Call, Classification, User
from callcenter.notify import outbox
from callcenter.settings import Settings


@dataclass(frozen=True)
class AgencyRequest:
    agency_code: str
    primary: bool = False


@dataclass(frozen=True)
class Location:
    district: str | None = None
    village: str | None = None
    text: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def _check_location(location: Location, settings: Settings) -> None:
    districts = {d.name: d.villages for d in settings.districts}
    if location.district is not None and location.district not in districts:
        raise InvalidInput(f"unknown district {location.district!r}", field="district")
    if location.village is not None:
        if location.district is None:
            raise InvalidInput("a village needs its district", field="village")
        if location.village not in districts[location.district]:
            raise InvalidInput(
                f"{location.village!r} is not a village of {location.district}", field="village"
            )
    if (location.latitude is None) != (location.longitude is None):
        raise InvalidInput("give both latitude and longitude, or neither", field="latitude")


def _assign(
    session: Session, *, incident: Incident, agency: Agency, primary: bool, user: User
) -> Assignment:
    if not agency.active:
        raise Conflict(f"agency {agency.code!r} is disabled", code=agency.code)
    assignment = Assignment(
        incident=incident,
        agency=agency,
        is_primary=primary,
        status=FollowUp.pending,
        call_local_day=incident.call_local_day,
        assigned_by_id=user.id,
    )
    session.add(assignment)
    session.flush()
    session.add(
        AssignmentChange(
            assignment_id=assignment.id,
            old_status=None,
            new_status=FollowUp.pending,
            changed_by_id=user.id,
            changed_at=assignment.assigned_at,
        )
    )
    return assignment


def create_incident(
    session: Session,
    *,
    settings: Settings,
    user: User,
    call_id: int,
    category: str,
    location: Location,
    summary: str,
    assign: Sequence[AgencyRequest],
) -> Incident:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"no call {call_id}", call_id=call_id)
    if call.classification is not Classification.emergency:
        raise Conflict("only a call classified emergency gets an incident", call_id=call_id)
    if session.scalars(select(Incident.id).where(Incident.call_id == call_id)).first():
        raise Conflict(f"call {call_id} has an incident already", call_id=call_id)
    if category not in settings.incidents.categories:
        raise InvalidInput(f"unknown category {category!r}", field="category")
    _check_location(location, settings)
    codes = [a.agency_code for a in assign]
    if len(set(codes)) != len(codes):
        raise InvalidInput("an agency is assigned twice", field="assignments")
    if assign and sum(a.primary for a in assign) != 1:
        raise InvalidInput("exactly one assignment must be primary", field="assignments")
    targets = [(agencies.get_by_code(session, a.agency_code), a.primary) for a in assign]

    incident = Incident(
        call_id=call.id,
        call_local_day=local_day(call.started_at, settings.tz),
        category=category,
        district=location.district,
        village=location.village,
        location_text=location.text,
        latitude=location.latitude,
        longitude=location.longitude,
        summary=summary,
        created_by_id=user.id,
    )
    session.add(incident)
    session.flush()
    made = [
        _assign(session, incident=incident, agency=agency, primary=primary, user=user)
        for agency, primary in targets
    ]
    for assignment in made:  # in this transaction: the agencies are told (issue 15)
        outbox.assignment_made(session, assignment)
    session.flush()
    return get_incident(session, incident.id)


def get_incident(session: Session, incident_id: int) -> Incident:
    incident = session.scalars(
        select(Incident)
        .where(Incident.id == incident_id)
        .options(
            selectinload(Incident.assignments).selectinload(Assignment.agency),
            selectinload(Incident.assignments).selectinload(Assignment.history),
        )
        .execution_options(populate_existing=True)
    ).one_or_none()
    if incident is None:
        raise NotFound(f"no incident {incident_id}", incident_id=incident_id)
    return incident


def incident_for_call(session: Session, call_id: int) -> Incident:
    incident_id = session.scalars(select(Incident.id).where(Incident.call_id == call_id)).first()
    if incident_id is None:
        raise NotFound(f"call {call_id} has no incident", call_id=call_id)
    return get_incident(session, incident_id)


def add_assignment(
    session: Session, *, user: User, incident_id: int, request: AgencyRequest
) -> Assignment:
    incident = get_incident(session, incident_id)
    agency = agencies.get_by_code(session, request.agency_code)
    if any(a.agency_id == agency.id for a in incident.assignments):
        raise Conflict(f"{agency.code!r} is assigned to this incident already", code=agency.code)
    if request.primary and any(a.is_primary for a in incident.assignments):
        raise Conflict("this incident has a primary agency already", incident_id=incident_id)
    if not request.primary and not incident.assignments:
        raise InvalidInput("the first assignment of an incident must be primary", field="primary")
    assignment = _assign(
        session, incident=incident, agency=agency, primary=request.primary, user=user
    )
    outbox.assignment_made(session, assignment)
    outbox.incident_changed(
        session, incident, change=f"{agency.name} ikut ditugaskan", skip_assignment_id=assignment.id
    )
    return assignment


def change_status(
    session: Session,
    *,
    user: User | None,
    assignment_id: int,
    status: FollowUp,
    reason: str | None,
    expected_version: int | None,
    now: datetime,
    actor: str | None = None,
    via: str | None = None,
) -> Assignment:
    """One follow-up step, by a user, or (``user`` None) by ``actor`` through ``via``."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound(f"no assignment {assignment_id}", assignment_id=assignment_id)
    if expected_version is not None and expected_version != assignment.version:
        raise Conflict(
            "the assignment changed since it was read",
            assignment_id=assignment_id,
            version=assignment.version,
        )
    try:
        check_transition(assignment.status, status, reason=reason)
    except TransitionRefused as exc:
        raise Conflict(str(exc), status=assignment.status.value) from exc
    except ReasonRequired as exc:
        raise InvalidInput(str(exc), field="reason") from exc
    session.add(
        AssignmentChange(
            assignment_id=assignment.id,
            old_status=assignment.status,
            new_status=status,
            reason=reason,
            changed_by_id=user.id if user else None,
            actor=actor,
            via=via,
            changed_at=now,
        )
    )
    assignment.status = status
    assignment.status_reason = reason
    assignment.status_changed_at = now
    try:
        session.flush()
    except StaleDataError as exc:  # another step was recorded between our read and write
        raise Conflict("the assignment changed meanwhile", assignment_id=assignment_id) from exc
    session.refresh(assignment, ["history", "agency"])
    return assignment


def overdue(session: Session, *, now: datetime, minutes: int) -> list[Assignment]:
    """Assignments still not acknowledged ``minutes`` after they were made, oldest first."""
    return list(
        session.scalars(
            select(Assignment)
            .where(
                Assignment.status.in_([FollowUp.pending, FollowUp.dispatched]),
                Assignment.assigned_at < now - timedelta(minutes=minutes),
            )
            .options(selectinload(Assignment.agency))
            .order_by(Assignment.assigned_at, Assignment.id)
        )
    )
