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

from sqlalchemy import Select, select
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
    log = select(AuditEntry)
    if f.action:
        log = log.where(AuditEntry.action.startswith(f.action))
    if f.entity:
        log = log.where(AuditEntry.entity == f.entity)
    log = _newest(
        log, f, limit, AuditEntry.at, AuditEntry.id, AuditEntry.actor_id, AuditEntry.entity_key
    )
    for e in session.scalars(log):
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
        tags = _newest(select(c), f, limit, c.changed_at, c.id, c.changed_by_id, c.call_id)
        for ch in session.scalars(tags):
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
        steps = _newest(select(a), f, limit, a.changed_at, a.id, a.changed_by_id, a.assignment_id)
        for ac in session.scalars(steps):
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


def _newest(
    query: Select[Any], f: TrailFilter, limit: int, at: Any, id_: Any, actor: Any, key: Any
) -> Select[Any]:
    """``query``'s newest ``limit`` rows in ``f``'s time range, by its actor, for its key.

    ``key`` is text in the audit log and an integer id in the two change tables."""
    query = query.order_by(at.desc(), id_.desc()).limit(limit)
    if f.since:
        query = query.where(at >= f.since)
    if f.until:
        query = query.where(at < f.until)
    if f.actor_id is not None:
        query = query.where(actor == f.actor_id)
    if f.entity_key:
        wanted = f.entity_key if key.type.python_type is str else _int(f.entity_key)
        query = query.where(key == wanted)
    return query


def _int(value: str) -> int:
    return int(value) if value.isdigit() else -1


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
