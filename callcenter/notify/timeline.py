"""An incident's timeline: every follow-up step and every notification and attempt, in order."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment, Incident
from callcenter.notify.models import (
    Audience,
    DeliveryStatus,
    Notification,
    NotificationKind,
)


class Entry(BaseModel):
    at: datetime
    assignment_id: int | None
    agency_code: str | None
    # status:<new status> | <kind>:queued | <kind>:sent | <kind>:failed
    event: str
    # Who (user id, name typed in the form, phone number) or where (channel) and what came back.
    detail: str


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    started_at: datetime
    finished_at: datetime
    ok: bool
    detail: str


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    kind: NotificationKind
    audience: Audience
    incident_id: int | None
    assignment_id: int | None
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    sent_via: str | None
    last_error: str | None
    attempt_log: list[AttemptOut]


def for_incident(session: Session, incident_id: int) -> list[Entry] | None:
    incident = session.scalars(
        select(Incident)
        .where(Incident.id == incident_id)
        .options(
            selectinload(Incident.assignments).selectinload(Assignment.history),
            selectinload(Incident.assignments).selectinload(Assignment.agency),
        )
    ).one_or_none()
    if incident is None:
        return None
    codes: dict[int, str] = dict(session.execute(select(Agency.id, Agency.code)).all())
    entries = []
    for assignment in incident.assignments:
        for step in assignment.history:
            who = (
                f"user {step.changed_by_id}"
                if step.changed_by_id is not None
                else f"{step.actor or '?'} via {step.via or '?'}"
            )
            entries.append(
                Entry(
                    at=step.changed_at,
                    assignment_id=assignment.id,
                    agency_code=assignment.agency.code,
                    event=f"status:{step.new_status.value}",
                    detail=who + (f": {step.reason}" if step.reason else ""),
                )
            )
    notifications = session.scalars(
        select(Notification)
        .where(Notification.incident_id == incident_id)
        .options(selectinload(Notification.attempt_log))
    )
    for n in notifications:
        code = codes.get(n.agency_id) if n.agency_id else None
        kind = n.kind.value
        entries.append(
            Entry(
                at=n.created_at,
                assignment_id=n.assignment_id,
                agency_code=code,
                event=f"{kind}:queued",
                detail=f"to {n.audience.value}, key {n.key}",
            )
        )
        for attempt in n.attempt_log:
            entries.append(
                Entry(
                    at=attempt.finished_at,
                    assignment_id=n.assignment_id,
                    agency_code=code,
                    event=f"{kind}:{'sent' if attempt.ok else 'failed'}",
                    detail=f"{attempt.channel}: {attempt.detail}",
                )
            )
    return sorted(entries, key=lambda e: e.at)


def open_escalations(session: Session) -> list[tuple[Assignment, datetime]]:
    rows = session.execute(
        select(Assignment, Notification.created_at)
        .join(Notification, Notification.assignment_id == Assignment.id)
        .where(
            Notification.kind == NotificationKind.escalation,
            Notification.audience == Audience.supervisor,
            Assignment.status.in_([FollowUp.pending, FollowUp.dispatched]),
        )
        .options(selectinload(Assignment.agency))
        .order_by(Assignment.assigned_at)
    )
    return [(assignment, at) for assignment, at in rows]


def undelivered(session: Session) -> list[NotificationOut]:
    rows = session.scalars(
        select(Notification)
        .where(Notification.status == DeliveryStatus.pending, Notification.attempts > 0)
        .options(selectinload(Notification.attempt_log))
        .order_by(Notification.created_at)
        .limit(500)
    )
    return [NotificationOut.model_validate(n) for n in rows]
