"""Acknowledgement links (no account), and what operators and supervisors see of the loop.

Thin: parse, call the service, return a page or a schema.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from callcenter.api.auth import OperatorUser, SupervisorUser
from callcenter.api.deps import Id, SessionDep, SettingsDep
from callcenter.db import utcnow
from callcenter.errors import Conflict, NotFound
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment
from callcenter.notify import ack, ack_page, links, timeline
from callcenter.notify.stats import AgencyResponse, agency_response
from callcenter.settings import Settings
from callcenter.stats.routes import Range

# The agencies' one-page form (HTML, opened from a message): not part of the REST API.
ack_router = APIRouter(tags=["acknowledgement"], include_in_schema=False)
router = APIRouter(prefix="/api/v1", tags=["notifications"])

_REFUSED = {
    "link_forged": "Tautan ini tidak sah. Gunakan tautan dari pesan layanan 112.",
    "link_expired": "Tautan ini sudah kedaluwarsa. Balas SMS OK <nomor kejadian> "
    "atau hubungi Call Center TTU Siaga 112.",
}


def _assignment(session: Session, settings: Settings, token: str) -> Assignment:
    assignment_id = links.verify(
        token,
        secret=settings.notify.link_secret.get_secret_value().encode(),
        now=int(time.time()),
    )
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise links.LinkForged("this link is not valid")
    return assignment


def _refused(exc: links.LinkRefused) -> HTMLResponse:
    return HTMLResponse(ack_page.refused(_REFUSED.get(exc.code, exc.message)), status_code=403)


@ack_router.get("/ack/{token}", response_class=HTMLResponse)
def ack_form(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    try:
        assignment = _assignment(session, settings, token)
    except links.LinkRefused as exc:
        return _refused(exc)
    return HTMLResponse(ack_page.form(assignment, token))


@ack_router.post("/ack/{token}", response_class=HTMLResponse)
def ack_submit(
    token: str,
    action: Annotated[FollowUp, Form()],
    name: Annotated[str, Form(min_length=1, max_length=100)],
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    try:
        assignment = _assignment(session, settings, token)
    except links.LinkRefused as exc:
        return _refused(exc)
    try:
        assignment = ack.acknowledge(
            session,
            assignment_id=assignment.id,
            target=action,
            actor=name.strip(),
            via="link",
            now=utcnow(),
        )
    except Conflict as exc:
        return HTMLResponse(ack_page.refused(exc.message), status_code=409)
    return HTMLResponse(ack_page.done(assignment))


@router.get("/incidents/{incident_id}/timeline")
def incident_timeline(
    incident_id: Id, session: SessionDep, _user: OperatorUser
) -> list[timeline.Entry]:
    entries = timeline.for_incident(session, incident_id)
    if entries is None:
        raise NotFound(f"no incident {incident_id}", incident_id=incident_id)
    return entries


class EscalationOut(BaseModel):
    assignment_id: int
    incident_id: int
    agency_code: str
    agency_name: str
    status: FollowUp
    assigned_at: datetime
    escalated_at: datetime
    minutes_waiting: int


@router.get("/notify/escalations")
def escalations(session: SessionDep, _user: SupervisorUser) -> list[EscalationOut]:
    """Assignments escalated to the supervisor and still not acknowledged."""
    now = utcnow()
    return [
        EscalationOut(
            assignment_id=a.id,
            incident_id=a.incident_id,
            agency_code=a.agency.code,
            agency_name=a.agency.name,
            status=a.status,
            assigned_at=a.assigned_at,
            escalated_at=at,
            minutes_waiting=int((now - a.assigned_at).total_seconds() // 60),
        )
        for a, at in timeline.open_escalations(session)
    ]


@router.get("/notify/undelivered")
def undelivered(session: SessionDep, _user: SupervisorUser) -> list[timeline.NotificationOut]:
    """Notifications that have failed at least once and are not delivered yet."""
    return timeline.undelivered(session)


@router.get("/stats/agency-response")
def response_times(
    span: Range, session: SessionDep, settings: SettingsDep, _user: SupervisorUser
) -> list[AgencyResponse]:
    return agency_response(session, *span, settings)
