"""GET /api/v1/live: call changes as server-sent events, for logged-in users.

The bearer token comes in the Authorization header, or as ``?access_token=`` for browsers'
EventSource, which cannot set headers (callcenter.logredact keeps it out of the access log).
The user is checked with a short session of its own: a stream lasts hours and must not hold a
pooled connection. The check is repeated every RECHECK_SECONDS: a user deactivated or logged
out, or a token expired, gets an ``unauthorized`` event and the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.auth import active_user, claims_from_token
from callcenter.api.deps import SettingsDep
from callcenter.calls.privacy import shown_to
from callcenter.errors import CallCenterError
from callcenter.live import InProcessBus, make_live_bus
from callcenter.models import Role
from callcenter.users.security import TokenClaims

router = APIRouter(prefix="/api/v1", tags=["live"])
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who holds the stream: the token it was opened with, and the role that decides masking."""

    claims: TokenClaims
    role: Role


def admitted(factory: sessionmaker[Session], claims: TokenClaims) -> Role:
    """The role of a stream's holder, checked again: an expired or revoked token, or a user
    deactivated since, raises (streams re-check every RECHECK_SECONDS and close)."""
    if time.time() >= claims.expires:
        raise CallCenterError("the token expired")
    with factory() as session:
        return active_user(session, claims).role


def live_user(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(_bearer)],
    access_token: str | None = None,
) -> Viewer:
    claims = claims_from_token(token or access_token, settings)
    return Viewer(claims, admitted(request.app.state.sessionmaker, claims))


def live_bus(request: Request, settings: SettingsDep) -> InProcessBus:
    """The bus the listener publishes to (serve), or one of our own (an API-only replica)."""
    state = request.app.state
    bus: InProcessBus | None = getattr(state, "live_bus", None)
    if bus is None:
        bus = state.live_bus = make_live_bus(settings.resolved_database_url)
    return bus


def _event(message: dict[str, Any], role: Role) -> str:
    kind = message.get("type", "call")
    message = shown_to(message, role)
    return f"event: {kind}\ndata: {json.dumps(message, ensure_ascii=False)}\n\n"


@router.get("/live", response_class=StreamingResponse)
async def live(
    request: Request,
    viewer: Annotated[Viewer, Depends(live_user)],
    bus: Annotated[InProcessBus, Depends(live_bus)],
) -> StreamingResponse:
    factory: sessionmaker[Session] = request.app.state.sessionmaker

    async def still_admitted() -> bool:
        try:
            await run_in_threadpool(admitted, factory, viewer.claims)
        except CallCenterError:
            return False
        return True

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        with bus.subscribe() as subscription:
            yield "retry: 2000\n: connected\n\n"
            checked = quiet_since = loop.time()
            while not await request.is_disconnected():
                wait = min(KEEPALIVE_SECONDS, RECHECK_SECONDS) - (loop.time() - checked)
                messages: list[dict[str, Any]] = []
                # A time-out, not wait_for: no task per wake-up, and what get_batch took is
                # never lost to a time-out that fires as it returns.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(wait, 0.0)):
                        messages = await subscription.get_batch()
                if loop.time() - checked >= RECHECK_SECONDS:
                    if not await still_admitted():
                        yield 'event: unauthorized\ndata: {"type":"unauthorized"}\n\n'
                        return
                    checked = loop.time()
                if not messages:
                    if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                        quiet_since = loop.time()
                        yield ": keep-alive\n\n"
                    continue
                quiet_since = loop.time()
                # Everything that gathered goes out in one write.
                yield "".join(_event(message, viewer.role) for message in messages)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
