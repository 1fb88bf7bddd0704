"""The audit trail over HTTP (admins), and the dependencies that feed it from other routers:
who acts (for the change hook) and who read a caller's personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from callcenter.api.auth import AdminUser, TokenClaimsDep
from callcenter.api.deps import SessionDep, SettingsDep
from callcenter.audit import (
    changes,  # noqa: F401  (the change hook)
    service,
)
from callcenter.phone import normalise
from callcenter.privacy.pseudonyms import pseudonym

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

# Routes that show personal data, and how a read of each is logged: (action, entity).
PERSONAL_READS: dict[str, tuple[str, str]] = {
    "/api/v1/callers/{number}": ("caller.history.read", "caller"),
    "/api/v1/stats/callers": ("callers.top.read", "callers"),
}


async def bind_actor(session: SessionDep, token: TokenClaimsDep) -> None:
    """Changes made in this request's session are logged as this user's."""
    session.info["actor_id"] = token.user_id


async def record_personal_read(
    request: Request, session: SessionDep, token: TokenClaimsDep, settings: SettingsDep
) -> None:
    """Log who read a caller's personal data, in the request's own transaction."""
    route = getattr(request.scope.get("route"), "path", "")
    logged = PERSONAL_READS.get(route)
    if logged is None:
        return
    action, entity = logged
    key = ""
    number = request.path_params.get("number")
    if number is not None:
        # The caller is named by pseudonym: the log itself keeps no number.
        identity = normalise(number, settings.phone_region).key
        key = pseudonym(identity, settings.token_secret.get_secret_value())
    service.record(
        session,
        action=action,
        entity=entity,
        entity_key=key,
        actor_id=token.user_id,
        details={
            "query": {
                k: v for k, v in request.query_params.items() if k not in ("token", "access_token")
            }
        },
    )


class TrailEntryOut(BaseModel):
    at: datetime
    source: str
    id: int
    actor_id: int | None
    actor_name: str
    action: str
    entity: str
    entity_key: str
    details: dict[str, Any]


class TrailOut(BaseModel):
    entries: list[TrailEntryOut]
    # Pass as `until` for the next (older) page; null when this page is the last.
    next_until: datetime | None


@router.get("")
def read_trail(
    session: SessionDep,
    settings: SettingsDep,
    _admin: AdminUser,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: int | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    entity_key: Annotated[str | None, Query(max_length=64)] = None,
    caller: Annotated[
        str | None, Query(max_length=64, description="a number: that caller's entries")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TrailOut:
    """Every change to users, incidents, agencies, assignments and classifications, and every
    read or export of a caller's personal data: who, when, what. Newest first."""
    if caller is not None:
        # The log names callers by pseudonym: find it from the number asked about.
        identity = normalise(caller, settings.phone_region).key
        entity, entity_key = "caller", pseudonym(identity, settings.token_secret.get_secret_value())
    entries = service.trail(
        session,
        service.TrailFilter(since, until, actor_id, action, entity, entity_key),
        limit=limit,
    )
    return TrailOut(
        entries=[TrailEntryOut.model_validate(e, from_attributes=True) for e in entries],
        next_until=entries[-1].at if len(entries) == limit else None,
    )
