"""One caller's rights: everything kept about a number (export), and its erasure.

Erasure pseudonymises the number wherever it is stored and deletes the raw AMI frames of the
caller's calls; the calls themselves, their classification and incidents stay (statistics and
the public record of emergencies), without anything that names the caller. It is refused while
an incident of one of the caller's calls is still open (an agency may need to call back). Both,
and every refusal, are recorded in the audit log under the caller's pseudonym.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callcenter.audit import service as audit
from callcenter.callbacks.models import CallbackAttempt
from callcenter.calls.export import export_row
from callcenter.errors import Conflict, NotFound
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, Incident
from callcenter.ivr.models import IvrRun
from callcenter.models import Call, Caller, CallEvent, ClassificationChange
from callcenter.phone import normalise
from callcenter.privacy import pseudonyms
from callcenter.settings import Settings

OPEN = [s for s in FollowUp if not s.is_final]


class ErasureRefused(Conflict):
    code = "erasure_refused"


@dataclass(frozen=True, slots=True)
class Subject:
    identity: str  # the number's key (E.164, or <status>:<raw>)
    e164: str | None
    pseudonym: str
    caller: Caller | None


def find(session: Session, number: str, settings: Settings) -> Subject:
    normalised = normalise(number, settings.phone_region)
    caller = session.scalar(select(Caller).where(Caller.number_key == normalised.key))
    name = pseudonyms.pseudonym(normalised.key, settings.token_secret.get_secret_value())
    return Subject(normalised.key, normalised.e164, name, caller)


def _calls_where(subject: Subject) -> Any:
    clauses = []
    if subject.caller is not None:
        clauses.append(Call.caller_key_id == subject.caller.id)
    if subject.e164:
        clauses.append(Call.caller_e164 == subject.e164)
    return or_(*clauses) if clauses else Call.id < 0


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def export(session: Session, number: str, settings: Settings, *, actor_name: str) -> dict[str, Any]:
    """Everything kept about ``number``, as JSON-ready data; the export itself is recorded."""
    subject = find(session, number, settings)
    calls = session.scalars(select(Call).where(_calls_where(subject)).order_by(Call.id)).all()
    if subject.caller is None and not calls:
        raise NotFound(f"nothing is kept about {number!r}")
    ids = [c.id for c in calls]
    incidents = session.scalars(select(Incident).where(Incident.call_id.in_(ids))).all()
    history = session.scalars(
        select(ClassificationChange).where(ClassificationChange.call_id.in_(ids))
    ).all()
    runs = (
        session.scalars(select(IvrRun).where(IvrRun.caller_e164 == subject.e164)).all()
        if subject.e164
        else []
    )
    attempts = session.scalars(
        select(CallbackAttempt).where(CallbackAttempt.call_id.in_(ids))
    ).all()
    caller = subject.caller
    data = {
        "number": number,
        "caller": None
        if caller is None
        else {
            "number": caller.e164 or caller.raw_last,
            "status": str(caller.status),
            "line_type": caller.line_type,
            "region": caller.region,
            "calls": caller.call_count,
            "emergency": caller.emergency_count,
            "prank": caller.prank_count,
            "non_emergency": caller.non_emergency_count,
            "first_seen_at": _iso(caller.first_seen_at),
            "last_seen_at": _iso(caller.last_seen_at),
        },
        "calls": [export_row(c) for c in calls],
        "classification_history": [
            {
                "call_uniqueid": next(c.uniqueid for c in calls if c.id == h.call_id),
                "changed_at": _iso(h.changed_at),
                "from": h.old_classification and str(h.old_classification),
                "to": str(h.new_classification),
                "reason": h.new_reason,
                "note": h.note,
            }
            for h in history
        ],
        "incidents": [
            {
                "call_uniqueid": next(c.uniqueid for c in calls if c.id == i.call_id),
                "category": i.category,
                "district": i.district,
                "village": i.village,
                "location_text": i.location_text,
                "summary": i.summary,
                "created_at": _iso(i.created_at),
            }
            for i in incidents
        ],
        "ivr_runs": [
            {"uniqueid": r.uniqueid, "started_at": _iso(r.started_at), "flag": r.flag} for r in runs
        ],
        "callback_attempts": [
            {"call_id": a.call_id, "outcome": str(a.outcome), "at": _iso(a.attempted_at)}
            for a in attempts
        ],
    }
    audit.record(
        session,
        action="caller.export",
        entity="caller",
        entity_key=subject.pseudonym,
        actor_name=actor_name,
        details={"calls": len(calls)},
    )
    return data


@dataclass(frozen=True, slots=True)
class Erasure:
    pseudonym: str
    calls: int
    ivr_runs: int
    callers: int
    prank_rollup_rows: int
    raw_events_deleted: int


def open_incidents(session: Session, subject: Subject) -> list[int]:
    """Incidents of the caller's calls with an agency assignment not yet closed."""
    return list(
        session.scalars(
            select(Incident.id)
            .join(Call, Call.id == Incident.call_id)
            .join(Assignment, Assignment.incident_id == Incident.id)
            .where(_calls_where(subject), Assignment.status.in_(OPEN))
            .distinct()
        )
    )


def known(session: Session, subject: Subject) -> bool:
    return (
        subject.caller is not None
        or session.scalar(select(Call.id).where(_calls_where(subject)).limit(1)) is not None
    )


def check_open(session: Session, subject: Subject, *, actor_name: str) -> list[int]:
    """The caller's open incidents; when there are any, a refusal is recorded in ``session``
    (the caller commits it, and erases nothing)."""
    still_open = open_incidents(session, subject)
    if still_open:
        audit.record(
            session,
            action="caller.erase.refused",
            entity="caller",
            entity_key=subject.pseudonym,
            actor_name=actor_name,
            details={"open_incidents": still_open},
        )
    return still_open


def erase(session: Session, subject: Subject, settings: Settings, *, actor_name: str) -> Erasure:
    """Pseudonymise ``subject`` everywhere (once :func:`check_open` found nothing open)."""
    still_open = open_incidents(session, subject)  # opened meanwhile: nothing is changed
    if still_open:
        raise ErasureRefused(
            "an incident of this caller was opened meanwhile", incidents=still_open
        )
    secret = settings.token_secret.get_secret_value()
    where = _calls_where(subject)
    call_ids = session.scalars(select(Call.id).where(where)).all()
    raw = pseudonyms.delete_raw_events(session, CallEvent.call_id.in_(call_ids))
    calls = pseudonyms.calls(session, Call.id.in_(call_ids), secret)
    runs = (
        pseudonyms.ivr_runs(session, IvrRun.caller_e164 == subject.e164, secret)
        if subject.e164
        else 0
    )
    callers = (
        pseudonyms.callers(session, Caller.id == subject.caller.id, secret)
        if subject.caller is not None
        else 0
    )
    rollups = pseudonyms.prank_rollups(session, secret, e164=subject.e164) if subject.e164 else 0
    result = Erasure(subject.pseudonym, calls, runs, callers, rollups, raw)
    audit.record(
        session,
        action="caller.erase",
        entity="caller",
        entity_key=subject.pseudonym,
        actor_name=actor_name,
        details={
            "calls": calls,
            "ivr_runs": runs,
            "callers": callers,
            "prank_rollup_rows": rollups,
            "raw_events_deleted": raw,
        },
    )
    return result
