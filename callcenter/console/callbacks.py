"""The call-back worklist on screen, with "record attempt" (the callbacks service decides)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from callcenter.api.deps import MAX_INT, SessionDep, SettingsDep
from callcenter.callbacks import service
from callcenter.callbacks.models import CallbackOutcome
from callcenter.console import web
from callcenter.console.web import ConsoleSession, OperatorPage, OperatorPost
from callcenter.db import utcnow
from callcenter.errors import CallCenterError
from callcenter.settings import Settings

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)


def _page(
    request: Request,
    console: ConsoleSession,
    session: Session,
    settings: Settings,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    items = service.worklist(
        session,
        now=utcnow(),
        window_hours=settings.callbacks.window_hours,
        max_attempts=settings.callbacks.max_attempts,
    )
    return web.render(
        request,
        "callbacks.html",
        console,
        status_code=status_code,
        items=items,
        outcomes=list(CallbackOutcome),
        message=message,
        error=error,
    )


@router.get("/callbacks", response_class=HTMLResponse)
def worklist(
    request: Request,
    console: OperatorPage,
    session: SessionDep,
    settings: SettingsDep,
    saved: str = "",
) -> HTMLResponse:
    return _page(request, console, session, settings, message=saved)


@router.post("/callbacks/{call_id}/attempts")
def record_attempt(
    request: Request,
    call_id: Annotated[int, Path(ge=1, le=MAX_INT)],
    console: OperatorPost,
    session: SessionDep,
    settings: SettingsDep,
    outcome: Annotated[CallbackOutcome, Form()],
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.record_attempt(
            session,
            user=console.user,
            call_id=call_id,
            outcome=outcome,
            note=note.strip() or None,
            now=utcnow(),
            window_hours=settings.callbacks.window_hours,
            max_attempts=settings.callbacks.max_attempts,
        )
    except CallCenterError as exc:
        session.rollback()
        return _page(request, console, session, settings, error=exc.message, status_code=409)
    return RedirectResponse(f"{web.PREFIX}/callbacks?saved=attempt_saved", status_code=303)
