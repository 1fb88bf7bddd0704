"""Writing notifications into the outbox, inside the caller's transaction (never commits).

An assignment and its notification commit together or not at all: a crash after the commit
leaves the notification waiting for the worker, a crash before it leaves neither.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.incidents.models import Assignment, Incident
from callcenter.models import CallerIdStatus
from callcenter.notify.models import Audience, Notification, NotificationKind


def assignment_facts(assignment: Assignment) -> dict[str, Any]:
    """What the agency is told about its assignment, as it stands now (JSON-ready)."""
    incident: Incident = assignment.incident
    call = incident.call
    withheld = call.caller_id_status is CallerIdStatus.withheld
    return {
        "incident_id": incident.id,
        "assignment_id": assignment.id,
        "agency_code": assignment.agency.code,
        "agency_name": assignment.agency.name,
        "is_primary": assignment.is_primary,
        "category": incident.category,
        "district": incident.district,
        "village": incident.village,
        "location_text": incident.location_text,
        "latitude": incident.latitude,
        "longitude": incident.longitude,
        "summary": incident.summary,
        "caller_number": None if withheld else (call.caller_e164 or call.caller_id_raw or None),
        "call_started_at": call.started_at.isoformat(),
        "assigned_at": assignment.assigned_at.isoformat(),
        "other_agencies": [
            a.agency.name for a in incident.assignments if a.agency_id != assignment.agency_id
        ],
    }


def _add(session: Session, notification: Notification) -> Notification:
    session.add(notification)
    session.flush()
    return notification


def assignment_made(session: Session, assignment: Assignment) -> Notification:
    """The agency's first message about its assignment (called where the assignment is made)."""
    session.flush()
    session.refresh(assignment, ["incident", "agency"])
    return _add(
        session,
        Notification(
            key=f"a{assignment.id}-assigned",
            kind=NotificationKind.assigned,
            audience=Audience.agency,
            agency_id=assignment.agency_id,
            incident_id=assignment.incident_id,
            assignment_id=assignment.id,
            payload=assignment_facts(assignment),
        ),
    )


def incident_changed(
    session: Session, incident: Incident, *, change: str, skip_assignment_id: int | None = None
) -> list[Notification]:
    """Tell every agency still working on ``incident`` what changed (``change``, Indonesian)."""
    session.flush()
    session.refresh(incident, ["assignments"])
    queued = []
    for assignment in incident.assignments:
        if assignment.status.is_final or assignment.id == skip_assignment_id:
            continue
        facts = assignment_facts(assignment) | {"change": change}
        queued.append(
            _add(
                session,
                Notification(
                    key=f"a{assignment.id}-changed-{uuid.uuid4().hex[:12]}",
                    kind=NotificationKind.changed,
                    audience=Audience.agency,
                    agency_id=assignment.agency_id,
                    incident_id=incident.id,
                    assignment_id=assignment.id,
                    payload=facts,
                ),
            )
        )
    return queued


def queue_once(
    session: Session,
    *,
    key: str,
    kind: NotificationKind,
    audience: Audience,
    payload: dict[str, Any],
    agency_id: int | None = None,
    incident_id: int | None = None,
    assignment_id: int | None = None,
    now: datetime,
) -> Notification | None:
    """Queue a notification unless one with ``key`` exists (scans may run twice, or in two
    workers at once: the unique key decides). Returns the new notification, or None."""
    if session.scalars(select(Notification.id).where(Notification.key == key)).first():
        return None
    notification = Notification(
        key=key,
        kind=kind,
        audience=audience,
        agency_id=agency_id,
        incident_id=incident_id,
        assignment_id=assignment_id,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )
    try:
        with session.begin_nested():
            session.add(notification)
    except IntegrityError:
        return None
    return notification
