"""One call on the operator's screen: caller history, tagging, the incident and its follow-up.

Every write goes through the services the API uses (calls, incidents); a domain error is shown
on the page it came from, with the call read again, never as a JSON body.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session

from callcenter.api.auth import admit
from callcenter.api.deps import MAX_INT, SessionDep, SettingsDep, WriteThreadsDep
from callcenter.callbacks import service as callbacks
from callcenter.calls import callers
from callcenter.calls import service as calls
from callcenter.console import web
from callcenter.console.web import ConsoleSession, OperatorPage, OperatorPost
from callcenter.db import utcnow
from callcenter.errors import CallCenterError, Conflict, NotFound
from callcenter.incidents import agencies
from callcenter.incidents import service as incidents
from callcenter.incidents.followup import NEXT, FollowUp
from callcenter.models import Classification, Role
from callcenter.settings import Settings

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
CallId = Annotated[int, Path(ge=1, le=MAX_INT)]
KEYS = {"emergency": "d", "prank": "i", "non_emergency": "b"}


def call_page(
    request: Request,
    console: ConsoleSession,
    session: Session,
    settings: Settings,
    call_id: int,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    call = calls.get_call(session, call_id=call_id)
    try:
        history = callers.caller_history(
            session, number=call.caller_id_raw, region=settings.phone_region, limit=20, offset=0
        )
    except NotFound:
        history = None
    open_callbacks = [
        item
        for item in callbacks.worklist(
            session,
            now=utcnow(),
            window_hours=settings.callbacks.window_hours,
            max_attempts=settings.callbacks.max_attempts,
        )
        if call.caller_e164 is not None and item.caller == call.caller_e164
    ]
    try:
        incident: Any = incidents.incident_for_call(session, call.id)
    except NotFound:
        incident = None
    now = utcnow()
    overdue_ids = {
        a.id
        for a in incidents.overdue(
            session, now=now, minutes=settings.incidents.followup_overdue_minutes
        )
    }
    return web.render(
        request,
        "call.html",
        console,
        status_code=status_code,
        call=call,
        history=history,
        open_callbacks=open_callbacks,
        incident=incident,
        overdue_ids=overdue_ids,
        next_steps={s: sorted(NEXT[s]) for s in FollowUp},
        categories=settings.incidents.categories,
        districts=settings.districts,
        agencies=agencies.list_agencies(session, include_inactive=False),
        reasons=settings.classification_reasons,
        classes=list(Classification),
        keys=KEYS,
        flagged=history is not None and history.caller.prank_count >= settings.ivr.prank_threshold,
        message=message,
        error=error,
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse)
def show_call(
    request: Request,
    call_id: CallId,
    console: OperatorPage,
    session: SessionDep,
    settings: SettingsDep,
    saved: str = "",
) -> HTMLResponse:
    return call_page(request, console, session, settings, call_id, message=saved)


def _back(call_id: int, saved: str) -> RedirectResponse:
    return RedirectResponse(f"{web.PREFIX}/calls/{call_id}?saved={saved}", status_code=303)


@router.post("/calls/{call_id}/classification")
async def classify(
    request: Request,
    call_id: CallId,
    console: OperatorPost,
    writes: WriteThreadsDep,
    session: SessionDep,
    settings: SettingsDep,
    classification: Annotated[Classification, Form()],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    def work(connection: Connection) -> Row[Any]:
        return calls.classify_call(
            connection,
            call_id=call_id,
            user_id=console.user.id,
            admit=partial(admit, minimum=Role.operator),
            classification=classification,
            reason=reason or None,
            note=note.strip() or None,
            expected_versions=[version],
            allowed_reasons=settings.classification_reasons,
        )

    try:
        await writes.run(work)
    except Conflict:
        return call_page(
            request, console, session, settings, call_id, error="stale", status_code=409
        )
    except CallCenterError as exc:
        return call_page(
            request, console, session, settings, call_id, error=exc.message, status_code=422
        )
    return _back(call_id, "tag_saved")


@router.post("/calls/{call_id}/incident")
def create_incident(
    request: Request,
    call_id: CallId,
    console: OperatorPost,
    session: SessionDep,
    settings: SettingsDep,
    category: Annotated[str, Form()] = "",
    district: Annotated[str, Form()] = "",
    village: Annotated[str, Form()] = "",
    summary: Annotated[str, Form()] = "",
    location_text: Annotated[str, Form()] = "",
    agency: Annotated[list[str] | None, Form()] = None,
    primary: Annotated[str, Form()] = "",
) -> Response:
    codes = agency or []
    if primary and primary not in codes:
        codes.append(primary)
    try:
        incidents.create_incident(
            session,
            settings=settings,
            user=console.user,
            call_id=call_id,
            category=category,
            location=incidents.Location(
                district=district or None,
                village=village or None,
                text=location_text.strip() or None,
            ),
            summary=summary.strip(),
            assign=[incidents.AgencyRequest(code, code == primary) for code in codes],
        )
    except CallCenterError as exc:
        session.rollback()  # nothing of a refused form is kept
        return call_page(
            request, console, session, settings, call_id, error=exc.message, status_code=422
        )
    return _back(call_id, "incident_saved")


@router.post("/assignments/{assignment_id}/status")
def change_status(
    request: Request,
    assignment_id: Annotated[int, Path(ge=1, le=MAX_INT)],
    console: OperatorPost,
    session: SessionDep,
    settings: SettingsDep,
    call_id: Annotated[int, Form()],
    status: Annotated[FollowUp, Form()],
    version: Annotated[int, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        incidents.change_status(
            session,
            user=console.user,
            assignment_id=assignment_id,
            status=status,
            reason=reason.strip() or None,
            expected_version=version,
            now=utcnow(),
        )
    except Conflict:
        session.rollback()
        return call_page(
            request, console, session, settings, call_id, error="stale", status_code=409
        )
    except CallCenterError as exc:
        session.rollback()
        return call_page(
            request, console, session, settings, call_id, error=exc.message, status_code=422
        )
    return _back(call_id, "status_saved")
