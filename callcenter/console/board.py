"""The operator's board: the live queue (pushed over SSE) and the screen pop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.deps import SessionDep, SettingsDep
from callcenter.calls.live_routes import KEEPALIVE_SECONDS, live_bus
from callcenter.calls.privacy import shown_to, summary_for
from callcenter.console import queue, web
from callcenter.console.web import OperatorPage
from callcenter.db import utcnow
from callcenter.errors import NotFound
from callcenter.incidents import service as incidents
from callcenter.live import InProcessBus
from callcenter.models import Call

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
_flags = queue.FlagCache()


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


async def _events(request: Request, messages: list[dict[str, Any]], threshold: int) -> str:
    """The messages as SSE text, each caller's prank flag added."""
    numbers = [m["caller_e164"] for m in messages if isinstance(m.get("caller_e164"), str)]
    missing = _flags.missing(numbers)
    if missing:
        factory: sessionmaker[Session] = request.app.state.sessionmaker

        def look_up() -> set[str]:
            with factory() as session:
                return queue.flagged_numbers(session, missing, threshold)

        _flags.store(missing, await run_in_threadpool(look_up))
    return "".join(_sse(m) for m in messages)


# Every page gets the same message objects from the bus: each is turned into text once, not
# once per page. The message is kept beside its text, so its id() is not reused meanwhile.
_texts: dict[int, tuple[dict[str, Any], str]] = {}
_TEXTS_MAX = 20_000


def _sse(message: dict[str, Any]) -> str:
    known = _texts.get(id(message))
    if known is not None and known[0] is message:
        return known[1]
    kind = message.get("type", "call")
    body = _flags.mark(message) if kind == "call" else message
    text = f"event: {kind}\ndata: {json.dumps(body, ensure_ascii=False)}\n\n"
    if len(_texts) >= _TEXTS_MAX:
        _texts.clear()
    _texts[id(message)] = (message, text)
    return text


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
    threshold = settings.ivr.prank_threshold
    ends = utcnow() + timedelta(minutes=settings.token_ttl_minutes)
    role = console.user.role

    async def events() -> AsyncIterator[str]:
        with bus.subscribe() as subscription:
            yield "retry: 2000\n: connected\n\n"
            while not await request.is_disconnected() and utcnow() < ends:
                try:
                    first = await asyncio.wait_for(subscription.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                batch = [first]
                while not subscription.queue.empty() and len(batch) < 500:
                    batch.append(subscription.queue.get_nowait())
                # What is queued goes out in one write: in a surge, one send per batch per
                # page instead of one per call change.
                shown = [shown_to(m, role) for m in batch]
                yield await _events(request, shown, threshold)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
