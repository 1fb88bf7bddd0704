"""Agencies, incidents and follow-up over REST. Thin: parse, call the service, return a schema."""

from __future__ import annotations

from fastapi import APIRouter, status

from callcenter.api.auth import AdminUser, OperatorUser
from callcenter.api.deps import Id, SessionDep, SettingsDep
from callcenter.db import utcnow
from callcenter.incidents import agencies, service
from callcenter.incidents.schemas import (
    AgencyIn,
    AgencyOut,
    AgencyPatch,
    AssignmentIn,
    AssignmentOut,
    DistrictOut,
    IncidentIn,
    IncidentOptions,
    IncidentOut,
    OverdueOut,
    StatusIn,
)
from callcenter.models import Role

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.get("/agencies")
def list_agencies(
    session: SessionDep, user: OperatorUser, include_inactive: bool = False
) -> list[AgencyOut]:
    show_all = include_inactive and user.role is Role.admin
    rows = agencies.list_agencies(session, include_inactive=show_all)
    return [AgencyOut.model_validate(a) for a in rows]


@router.post("/agencies", status_code=status.HTTP_201_CREATED)
def add_agency(body: AgencyIn, session: SessionDep, _user: AdminUser) -> AgencyOut:
    agency = agencies.add(session, code=body.code, name=body.name, kind=body.kind)
    return AgencyOut.model_validate(agency)


@router.patch("/agencies/{code}")
def update_agency(code: str, body: AgencyPatch, session: SessionDep, _user: AdminUser) -> AgencyOut:
    agency = agencies.update(session, code=code, name=body.name, kind=body.kind, active=body.active)
    return AgencyOut.model_validate(agency)


@router.get("/incident-options")
def incident_options(settings: SettingsDep, _user: OperatorUser) -> IncidentOptions:
    return IncidentOptions(
        categories=settings.incidents.categories,
        districts=[DistrictOut(name=d.name, villages=d.villages) for d in settings.districts],
        followup_overdue_minutes=settings.incidents.followup_overdue_minutes,
    )


@router.post("/incidents", status_code=status.HTTP_201_CREATED)
def create_incident(
    body: IncidentIn, session: SessionDep, settings: SettingsDep, user: OperatorUser
) -> IncidentOut:
    incident = service.create_incident(
        session,
        settings=settings,
        user=user,
        call_id=body.call_id,
        category=body.category,
        location=service.Location(
            district=body.district,
            village=body.village,
            text=body.location_text,
            latitude=body.latitude,
            longitude=body.longitude,
        ),
        summary=body.summary,
        assign=[service.AgencyRequest(a.agency_code, a.primary) for a in body.assignments],
    )
    return IncidentOut.model_validate(incident)


@router.get("/incidents/{incident_id}")
def get_incident(incident_id: Id, session: SessionDep, _user: OperatorUser) -> IncidentOut:
    return IncidentOut.model_validate(service.get_incident(session, incident_id))


@router.get("/calls/{call_id}/incident")
def incident_for_call(call_id: Id, session: SessionDep, _user: OperatorUser) -> IncidentOut:
    return IncidentOut.model_validate(service.incident_for_call(session, call_id))


@router.post("/incidents/{incident_id}/assignments", status_code=status.HTTP_201_CREATED)
def add_assignment(
    incident_id: Id, body: AssignmentIn, session: SessionDep, user: OperatorUser
) -> AssignmentOut:
    assignment = service.add_assignment(
        session,
        user=user,
        incident_id=incident_id,
        request=service.AgencyRequest(body.agency_code, body.primary),
    )
    session.refresh(assignment, ["history", "agency"])
    return AssignmentOut.model_validate(assignment)


@router.post("/assignments/{assignment_id}/status")
def change_status(
    assignment_id: Id, body: StatusIn, session: SessionDep, user: OperatorUser
) -> AssignmentOut:
    assignment = service.change_status(
        session,
        user=user,
        assignment_id=assignment_id,
        status=body.status,
        reason=body.reason,
        expected_version=body.version,
        now=utcnow(),
    )
    return AssignmentOut.model_validate(assignment)


@router.get("/assignments/overdue")
def overdue(session: SessionDep, settings: SettingsDep, _user: OperatorUser) -> list[OverdueOut]:
    now = utcnow()
    rows = service.overdue(session, now=now, minutes=settings.incidents.followup_overdue_minutes)
    return [
        OverdueOut(
            id=a.id,
            incident_id=a.incident_id,
            agency=AgencyOut.model_validate(a.agency),
            is_primary=a.is_primary,
            status=a.status,
            assigned_at=a.assigned_at,
            minutes_waiting=int((now - a.assigned_at).total_seconds() // 60),
        )
        for a in rows
    ]
