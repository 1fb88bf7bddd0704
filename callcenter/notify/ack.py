"""Acknowledgement from an agency without an account: a signed link, or an SMS reply.

Either moves the assignment to ``acknowledged`` (``OK``) or ``resolved`` (``SELESAI``), through
the steps the follow-up state machine requires, each step recorded with who and how.

>>> parse_reply(" ok 123 ")
('acknowledged', 123)
>>> parse_reply("Selesai 45, terima kasih")
('resolved', 45)
>>> parse_reply("siap") is None
True
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.errors import Conflict, NotFound
from callcenter.incidents import service
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment
from callcenter.notify.channels import gammu
from callcenter.notify.models import SmsReply
from callcenter.phone import normalise
from callcenter.settings import Settings

log = logging.getLogger(__name__)

_REPLY = re.compile(r"^\s*(OK|SELESAI)\s*#?\s*(\d{1,18})\b", re.IGNORECASE)
_PATH = {
    FollowUp.acknowledged: [FollowUp.dispatched, FollowUp.acknowledged],
    FollowUp.resolved: [FollowUp.dispatched, FollowUp.acknowledged, FollowUp.resolved],
}
_ORDER = [FollowUp.pending, FollowUp.dispatched, FollowUp.acknowledged, FollowUp.resolved]


def parse_reply(text: str) -> tuple[str, int] | None:
    match = _REPLY.match(text)
    if match is None:
        return None
    word = match.group(1).upper()
    return ("acknowledged" if word == "OK" else "resolved", int(match.group(2)))


def acknowledge(
    session: Session,
    *,
    assignment_id: int,
    target: FollowUp,
    actor: str,
    via: str,
    now: datetime,
) -> Assignment:
    """Move the assignment up to ``target``; a repeat (the same reply twice) changes nothing."""
    if target not in _PATH:
        raise Conflict(f"an agency can only acknowledge or resolve, not {target.value}")
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound(f"no assignment {assignment_id}", assignment_id=assignment_id)
    if assignment.status is FollowUp.not_followed_up:
        raise Conflict("this assignment was closed as not followed up", status="not_followed_up")
    for step in _PATH[target]:
        if _ORDER.index(assignment.status) >= _ORDER.index(step):
            continue
        assignment = service.change_status(
            session,
            user=None,
            assignment_id=assignment_id,
            status=step,
            reason=None,
            expected_version=None,
            now=now,
            actor=actor[:128],
            via=via,
        )
    return assignment


def _agencies_by_number(session: Session, settings: Settings) -> dict[str, list[int]]:
    """Each SMS number configured for an agency (first or second contact) -> agency ids."""
    ids: dict[str, int] = dict(session.execute(select(Agency.code, Agency.id)).all())
    found: dict[str, list[int]] = {}
    for code, contacts in settings.notify.agencies.items():
        if code not in ids:
            continue
        for channel in [*contacts.channels, *contacts.second_contacts]:
            if channel.kind.is_sms:
                key = normalise(channel.to, settings.phone_region).key
                found.setdefault(key, []).append(ids[code])
    return found


def apply_reply(
    session: Session, *, settings: Settings, sender: str, text: str, now: datetime
) -> tuple[int | None, str]:
    """What one SMS reply does: (assignment id or None, outcome in words)."""
    parsed = parse_reply(text)
    if parsed is None:
        return None, "ignored: not OK/SELESAI <kejadian>"
    action, incident_id = parsed
    agency_ids = _agencies_by_number(session, settings).get(
        normalise(sender, settings.phone_region).key, []
    )
    if not agency_ids:
        return None, "ignored: number not configured for any agency"
    assignment_id = session.scalars(
        select(Assignment.id).where(
            Assignment.incident_id == incident_id, Assignment.agency_id.in_(agency_ids)
        )
    ).first()
    if assignment_id is None:
        return None, f"ignored: incident {incident_id} not assigned to this number's agency"
    try:
        with session.begin_nested():
            acknowledge(
                session,
                assignment_id=assignment_id,
                target=FollowUp(action),
                actor=sender,
                via="sms",
                now=now,
            )
    except Conflict as exc:
        return assignment_id, f"refused: {exc.message}"[:255]
    return assignment_id, action


def read_sms_replies(
    factory: sessionmaker[Session], settings: Settings, *, now: Callable[[], datetime]
) -> int:
    """Record every reply in gammu-smsd's inbox once, apply it, then move the file aside."""
    done = 0
    for message in gammu.read_inbox(settings.notify.gammu):
        with factory.begin() as session:
            seen = session.scalars(
                select(SmsReply.id).where(SmsReply.file_name == message.path.name)
            ).first()
            if seen is None:
                assignment_id, outcome = apply_reply(
                    session, settings=settings, sender=message.sender, text=message.text, now=now()
                )
                session.add(
                    SmsReply(
                        file_name=message.path.name,
                        sender=message.sender[:32],
                        text=message.text,
                        received_at=now(),
                        assignment_id=assignment_id,
                        outcome=outcome,
                    )
                )
                log.info("SMS reply %s: %s", message.path.name, outcome)
                done += 1
        gammu.set_aside(message, settings.notify.gammu)
    return done
