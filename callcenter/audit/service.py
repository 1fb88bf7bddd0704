"""Writing to the audit log (accesses; changes are hooked in audit/changes.py) and reading it.

The trail an admin reads merges three append-only sources, newest first: audit_log,
classification_changes (``call.classify``) and incident_assignment_changes
(``assignment.status``).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.audit.models import AuditEntry
from callcenter.incidents.models import AssignmentChange
from callcenter.models import ClassificationChange


def command_actor() -> str:
    """How a command run on the server is named in the log (the system account that ran it)."""
    try:
        return f"command line ({getpass.getuser()})"
    except (KeyError, OSError):
        return "command line"


def record(
    session: Session,
    *,
    action: str,
    entity: str,
    entity_key: str = "",
    details: dict[str, Any] | None = None,
    actor_id: int | None = None,
    actor_name: str = "",
) -> None:
    """Add an entry to the session's transaction: it is kept exactly when the work is."""
    session.add(
        AuditEntry(
            actor_id=actor_id if actor_id is not None else session.info.get("actor_id"),
            actor_name=actor_name or session.info.get("actor_name", ""),
            action=action,
            entity=entity,
            entity_key=entity_key,
            details=details or {},
        )
    )


@dataclass(frozen=True, slots=True)
class TrailEntry:
    at: datetime
    source: str  # audit_log | classification_changes | incident_assignment_changes
    id: int
    actor_id: int | None
    actor_name: str
    action: str
    entity: str
    entity_key: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TrailFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor_id: int | None = None
    action: str | None = None  # a prefix: "user." or "caller.history.read"
    entity: str | None = None
    entity_key: str | None = None


def _wants(f: TrailFilter, action: str, entity: str) -> bool:
    if f.action and not action.startswith(f.action) and not f.action.startswith(action):
        return False
    return not (f.entity and f.entity != entity)


def trail(session: Session, f: TrailFilter, *, limit: int) -> list[TrailEntry]:
    """The newest ``limit`` entries matching ``f`` (page back with ``until``)."""
    found: list[TrailEntry] = []
    q = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if f.since:
        q = q.where(AuditEntry.at >= f.since)
    if f.until:
        q = q.where(AuditEntry.at < f.until)
    if f.actor_id is not None:
        q = q.where(AuditEntry.actor_id == f.actor_id)
    if f.action:
        q = q.where(AuditEntry.action.startswith(f.action))
    if f.entity:
        q = q.where(AuditEntry.entity == f.entity)
    if f.entity_key:
        q = q.where(AuditEntry.entity_key == f.entity_key)
    for e in session.scalars(q):
        found.append(
            TrailEntry(
                e.at,
                "audit_log",
                e.id,
                e.actor_id,
                e.actor_name,
                e.action,
                e.entity,
                e.entity_key,
                e.details,
            )
        )
    if _wants(f, "call.classify", "call"):
        c = ClassificationChange
        q2 = select(c).order_by(c.changed_at.desc(), c.id.desc()).limit(limit)
        if f.since:
            q2 = q2.where(c.changed_at >= f.since)
        if f.until:
            q2 = q2.where(c.changed_at < f.until)
        if f.actor_id is not None:
            q2 = q2.where(c.changed_by_id == f.actor_id)
        if f.entity_key:
            q2 = q2.where(c.call_id == _int(f.entity_key))
        for ch in session.scalars(q2):
            found.append(
                TrailEntry(
                    ch.changed_at,
                    "classification_changes",
                    ch.id,
                    ch.changed_by_id,
                    "",
                    "call.classify",
                    "call",
                    str(ch.call_id),
                    {
                        "classification": {
                            "from": _str(ch.old_classification),
                            "to": _str(ch.new_classification),
                        },
                        "reason": {"from": ch.old_reason, "to": ch.new_reason},
                        "note": ch.note,
                    },
                )
            )
    if _wants(f, "assignment.status", "assignment"):
        a = AssignmentChange
        q3 = select(a).order_by(a.changed_at.desc(), a.id.desc()).limit(limit)
        if f.since:
            q3 = q3.where(a.changed_at >= f.since)
        if f.until:
            q3 = q3.where(a.changed_at < f.until)
        if f.actor_id is not None:
            q3 = q3.where(a.changed_by_id == f.actor_id)
        if f.entity_key:
            q3 = q3.where(a.assignment_id == _int(f.entity_key))
        for ac in session.scalars(q3):
            found.append(
                TrailEntry(
                    ac.changed_at,
                    "incident_assignment_changes",
                    ac.id,
                    ac.changed_by_id,
                    "",
                    "assignment.status",
                    "assignment",
                    str(ac.assignment_id),
                    {
                        "status": {"from": _str(ac.old_status), "to": _str(ac.new_status)},
                        "reason": ac.reason,
                    },
                )
            )
    found.sort(key=lambda e: (e.at, e.id), reverse=True)
    return found[:limit]


def _int(value: str) -> int:
    return int(value) if value.isdigit() else -1


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
