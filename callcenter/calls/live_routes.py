"""GET /api/v1/live: call changes as server-sent events, for logged-in users.

The bearer token comes in the Authorization header, or as ``?access_token=`` for browsers'
EventSource, which cannot set headers. The user is checked with a short session of its own:
a stream lasts hours and must not hold a pooled connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.auth import active_user, claims_from_token
from callcenter.api.deps import SettingsDep
from callcenter.live import InProcessBus, make_live_bus
from callcenter.models import User

router = APIRouter(prefix="/api/v1", tags=["live"])
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
KEEPALIVE_SECONDS = 15.0


def live_user(
    request: Request,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(_bearer)],
    access_token: str | None = None,
) -> User:
    claims = claims_from_token(token or access_token, settings)
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        return active_user(session, claims)


def live_bus(request: Request, settings: SettingsDep) -> InProcessBus:
    """The bus the listener publishes to (serve), or one of our own (an API-only replica)."""
    state = request.app.state
    bus: InProcessBus | None = getattr(state, "live_bus", None)
    if bus is None:
        bus = state.live_bus = make_live_bus(settings.resolved_database_url)
    return bus


@router.get("/live", response_class=StreamingResponse)
async def live(
    request: Request,
    _user: Annotated[User, Depends(live_user)],
    bus: Annotated[InProcessBus, Depends(live_bus)],
) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        with bus.subscribe() as subscription:
            yield "retry: 2000\n: connected\n\n"
            while not await request.is_disconnected():
                try:
                    message = await asyncio.wait_for(subscription.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                kind = message.get("type", "call")
                yield f"event: {kind}\ndata: {json.dumps(message, ensure_ascii=False)}\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
