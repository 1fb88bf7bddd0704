"""Every change to users, incidents, agencies and assignments is written to the audit log in the
transaction that makes it, by a session hook: services need not remember to.

Who: ``session.info["actor_id"]`` (the API's routes set it from the bearer token, see
:func:`callcenter.audit.service.bind_actor`), else ``session.info["actor_name"]`` (a command),
else "system". Classification and follow-up status changes have history tables of their own
(classification_changes, incident_assignment_changes), read beside this log by the audit API.
Imported for its hook by the API app and the command line.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from callcenter.audit.models import AuditEntry
from callcenter.incidents.models import Agency, Assignment, Incident
from callcenter.models import User

# What is audited, and the fields a change of which is not worth a line (or must not be shown).
AUDITED: dict[type[Any], tuple[str, frozenset[str]]] = {
    User: (
        "user",
        frozenset(
            {
                "failed_logins",
                "locked_until",
                "updated_at",
                "created_at",
                "password_hash",
                "token_generation",
            }
        ),
    ),
    Incident: ("incident", frozenset({"updated_at", "created_at"})),
    Agency: ("agency", frozenset({"updated_at", "created_at"})),
    # Status steps are in incident_assignment_changes already.
    Assignment: ("assignment", frozenset({"status", "status_changed_at", "version"})),
}
SECRET_FIELDS = frozenset({"password_hash"})
# Who a change is logged as when no user is bound to the session (the command line sets it).
default_actor_name = "system"


def _value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _changes(session: Session) -> list[tuple[Any, str, str, dict[str, Any]]]:
    """(object, entity, verb, what changed) for each audited object in this flush."""
    found = []
    for obj, verb in [
        *((o, "create") for o in session.new),
        *((o, "update") for o in session.dirty),
        *((o, "delete") for o in session.deleted),
    ]:
        audited = AUDITED.get(type(obj))
        if audited is None:
            continue
        entity, quiet = audited
        state = inspect(obj)
        changes: dict[str, Any] = {}
        for attr in state.mapper.column_attrs:
            name = attr.key
            history = state.attrs[name].history
            if verb == "create":
                if name not in quiet and getattr(obj, name) is not None and name != "id":
                    changes[name] = _value(getattr(obj, name))
                continue
            if not history.has_changes():
                continue
            if name in SECRET_FIELDS:
                changes[name] = "changed"  # that it changed, never the value
            elif name not in quiet:
                old = history.deleted[0] if history.deleted else None
                new = history.added[0] if history.added else None
                changes[name] = {"from": _value(old), "to": _value(new)}
        if verb == "update" and not changes:
            continue
        found.append((obj, entity, verb, changes))
    return found


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        session.info.setdefault("audit_pending", []).extend(_changes(session))


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    # New rows have their ids only now. The entries are flushed next (commit flushes until the
    # session is clean), in the same transaction as the change.
    pending = session.info.pop("audit_pending", [])
    if not pending:
        return
    actor_id = session.info.get("actor_id")
    actor_name = session.info.get("actor_name", "" if actor_id else default_actor_name)
    for obj, entity, verb, changes in pending:
        session.add(
            AuditEntry(
                actor_id=actor_id,
                actor_name=actor_name,
                action=f"{entity}.{verb}",
                entity=entity,
                entity_key="" if obj.id is None else str(obj.id),
                details=changes,
            )
        )


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, _previous: Any) -> None:
    session.info.pop("audit_pending", None)
