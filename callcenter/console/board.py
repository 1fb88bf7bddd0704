"""The operator's board: the live queue (pushed over SSE) and the screen pop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.deps import SessionDep, SettingsDep
from callcenter.calls.live_routes import KEEPALIVE_SECONDS, RECHECK_SECONDS, admitted, live_bus
from callcenter.calls.privacy import shown_to, summary_for
from callcenter.console import queue, stream, web
from callcenter.console.web import OperatorPage
from callcenter.db import utcnow
from callcenter.errors import CallCenterError, NotFound
from callcenter.incidents import service as incidents
from callcenter.live import InProcessBus
from callcenter.models import Call
from callcenter.users.security import read_token_claims

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def board(
    request: Request, console: OperatorPage, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    role = console.user.role
    rows = [
        shown_to(r, role) for r in queue.snapshot(session, threshold=settings.ivr.prank_threshold)
    ]
    recent = [summary_for(c, role) for c in queue.recent(session)]
    overdue = incidents.overdue(
        session, now=utcnow(), minutes=settings.incidents.followup_overdue_minutes
    )
    return web.render(
        request,
        "board.html",
        console,
        rows=rows,
        recent=recent,
        overdue=overdue,
        overdue_minutes=settings.incidents.followup_overdue_minutes,
    )


@router.get("/board.json")
def board_json(console: OperatorPage, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """The live calls now: the page reloads its board from this after (re)connecting."""
    rows = queue.snapshot(session, threshold=settings.ivr.prank_threshold)
    return JSONResponse([shown_to(r, console.user.role) for r in rows])


@router.get("/calls/live/{pbx}/{uniqueid}")
def pop(pbx: str, uniqueid: str, console: OperatorPage, session: SessionDep) -> RedirectResponse:
    """The screen pop: a call as the live stream names it, opened on the call's page."""
    del console
    call_id = session.scalar(select(Call.id).where(Call.pbx == pbx, Call.uniqueid == uniqueid))
    if call_id is None:
        raise NotFound(f"no call {uniqueid} on {pbx}")
    return RedirectResponse(f"{web.PREFIX}/calls/{call_id}", status_code=303)


@router.get("/live")
async def live(
    request: Request,
    console: OperatorPage,
    settings: SettingsDep,
    bus: Annotated[InProcessBus, Depends(live_bus)],
) -> StreamingResponse:
    """The same live bus as /api/v1/live, for the page's EventSource (session cookie, no token).

    The stream ends when the session expires, and the page then goes to the log-in page.
    """
    ends = utcnow() + timedelta(minutes=settings.token_ttl_minutes)
    role = console.user.role
    hub = stream.hub_for(request.app.state, bus, settings.ivr.prank_threshold)
    claims = read_token_claims(console.token, secret=settings.token_secret.get_secret_value())
    factory: sessionmaker[Session] = request.app.state.sessionmaker

    async def events() -> AsyncIterator[bytes]:
        # A closed connection cancels this (StreamingResponse watches for the disconnect).
        with hub.page(role) as page:
            yield b"retry: 2000\n: connected\n\n"
            checked = time.monotonic()
            while utcnow() < ends:
                # Whatever gathered since the last write goes out in one piece.
                chunk = await page.take(min(KEEPALIVE_SECONDS, RECHECK_SECONDS))
                if time.monotonic() - checked >= RECHECK_SECONDS:
                    # Deactivated, logged out or demoted since the page opened: close.
                    try:
                        await run_in_threadpool(admitted, factory, claims)
                    except CallCenterError:
                        yield b'event: unauthorized\ndata: {"type":"unauthorized"}\n\n'
                        return
                    checked = time.monotonic()
                yield chunk or b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
