"""Silence is not forgotten: reminders, escalations and the daily digest.

An assignment not acknowledged within its agency's time (per agency and category) is sent a
reminder; still silent after twice that time, it is escalated to the agency's second contacts
and to the supervisor. At the digest hour (local time), each agency with assignments still
open, and the supervisor, get the day's list. Each is a notification with a fixed key, so a
scan repeated (or run by two workers) queues it once; each is on the incident's timeline.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, Incident
from callcenter.localtime import local_day
from callcenter.notify import outbox
from callcenter.notify.models import Audience, Notification, NotificationKind
from callcenter.settings import Settings

UNACKNOWLEDGED = (FollowUp.pending, FollowUp.dispatched)
OPEN = (FollowUp.pending, FollowUp.dispatched, FollowUp.acknowledged)


def ack_minutes(assignment: Assignment, settings: Settings) -> int:
    return settings.notify.ack_minutes_for(
        assignment.agency.code,
        assignment.incident.category,
        settings.incidents.followup_overdue_minutes,
    )


def _open(session: Session, statuses: tuple[FollowUp, ...]) -> list[Assignment]:
    return list(
        session.scalars(
            select(Assignment)
            .where(Assignment.status.in_(statuses))
            .options(
                selectinload(Assignment.agency),
                selectinload(Assignment.incident)
                .selectinload(Incident.assignments)
                .selectinload(Assignment.agency),
                selectinload(Assignment.incident).selectinload(Incident.call),
            )
            .order_by(Assignment.assigned_at, Assignment.id)
        )
    )


def scan(session: Session, *, settings: Settings, now: datetime) -> int:
    """Queue what is due now; returns how many notifications were queued."""
    queued = 0
    for assignment in _open(session, UNACKNOWLEDGED):
        limit = timedelta(minutes=ack_minutes(assignment, settings))
        waited = now - assignment.assigned_at
        if waited < limit:
            continue
        facts = outbox.assignment_facts(assignment) | {
            "minutes_waiting": int(waited.total_seconds() // 60)
        }
        steps: list[tuple[str, NotificationKind, Audience]] = [
            ("reminder", NotificationKind.reminder, Audience.agency)
        ]
        if waited >= 2 * limit:
            steps.append(
                ("escalation-supervisor", NotificationKind.escalation, Audience.supervisor)
            )
            if settings.notify.contacts(assignment.agency.code).second_contacts:
                steps.append(
                    ("escalation-second", NotificationKind.escalation, Audience.second_contact)
                )
        for suffix, kind, audience in steps:
            made = outbox.queue_once(
                session,
                key=f"a{assignment.id}-{suffix}",
                kind=kind,
                audience=audience,
                payload=facts,
                agency_id=assignment.agency_id,
                incident_id=assignment.incident_id,
                assignment_id=assignment.id,
                now=now,
            )
            queued += made is not None
    return queued + _digest(session, settings=settings, now=now)


def _digest(session: Session, *, settings: Settings, now: datetime) -> int:
    n = settings.notify
    if not n.daily_digest or now.astimezone(settings.tz).time() < n.digest_at:
        return 0
    day = local_day(now, settings.tz)
    done = select(Notification.id).where(Notification.key == f"digest-{day}-supervisor")
    if session.scalars(done).first() is not None:
        return 0
    by_agency: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for assignment in _open(session, OPEN):
        by_agency[assignment.agency_id].append(
            {
                "incident_id": assignment.incident_id,
                "assignment_id": assignment.id,
                "agency_name": assignment.agency.name,
                "category": assignment.incident.category,
                "status": assignment.status.value,
                "assigned_at": assignment.assigned_at.isoformat(),
            }
        )
    queued = 0
    for agency_id, items in by_agency.items():
        made = outbox.queue_once(
            session,
            key=f"digest-{day}-agency{agency_id}",
            kind=NotificationKind.digest,
            audience=Audience.agency,
            payload={"as_of": now.isoformat(), "open": items},
            agency_id=agency_id,
            now=now,
        )
        queued += made is not None
    if by_agency:
        everything = [item for items in by_agency.values() for item in items]
        made = outbox.queue_once(
            session,
            key=f"digest-{day}-supervisor",
            kind=NotificationKind.digest,
            audience=Audience.supervisor,
            payload={"as_of": now.isoformat(), "open": everything},
            now=now,
        )
        queued += made is not None
    return queued
