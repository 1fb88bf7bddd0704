"""The admin's pages: users (create, role, queue member, deactivate, reset password), agencies."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from callcenter.api.deps import MAX_INT, SessionDep
from callcenter.console import web
from callcenter.console.web import AdminPage, AdminPost, ConsoleSession
from callcenter.errors import CallCenterError, InvalidInput
from callcenter.incidents import agencies
from callcenter.incidents.schemas import AgencyIn
from callcenter.models import Role
from callcenter.users import service as users

router = APIRouter(prefix=f"{web.PREFIX}/admin", include_in_schema=False)
UserId = Annotated[int, Path(ge=1, le=MAX_INT)]
AGENCY_CODE = re.compile(AgencyIn.model_fields["code"].metadata[0].pattern)


def _page(
    request: Request,
    console: ConsoleSession,
    session: Session,
    *,
    message: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return web.render(
        request,
        "admin.html",
        console,
        status_code=status_code,
        users=users.list_users(session),
        agencies=agencies.list_agencies(session, include_inactive=True),
        roles=list(Role),
        message=message,
        error=error,
    )


def _done() -> RedirectResponse:
    return RedirectResponse(f"{web.PREFIX}/admin?saved=saved", status_code=303)


def _refused(
    request: Request, console: ConsoleSession, session: Session, exc: CallCenterError
) -> HTMLResponse:
    session.rollback()
    return _page(request, console, session, error=exc.message, status_code=exc.status_code)


@router.get("", response_class=HTMLResponse)
def admin_page(
    request: Request, console: AdminPage, session: SessionDep, saved: str = ""
) -> HTMLResponse:
    return _page(request, console, session, message=saved)


@router.post("/users")
def create_user(
    request: Request,
    console: AdminPost,
    session: SessionDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    role: Annotated[Role, Form()],
    display_name: Annotated[str, Form()] = "",
    queue_member_name: Annotated[str, Form()] = "",
    queue_member_interface: Annotated[str, Form()] = "",
) -> Response:
    try:
        users.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name.strip(),
            queue_member_name=queue_member_name.strip() or None,
            queue_member_interface=queue_member_interface.strip() or None,
        )
    except CallCenterError as exc:
        return _refused(request, console, session, exc)
    return _done()


@router.post("/users/{user_id}")
def update_user(
    request: Request,
    user_id: UserId,
    console: AdminPost,
    session: SessionDep,
    role: Annotated[Role, Form()],
    display_name: Annotated[str, Form()] = "",
    queue_member_name: Annotated[str, Form()] = "",
    queue_member_interface: Annotated[str, Form()] = "",
) -> Response:
    try:
        users.update_user(
            session,
            user_id=user_id,
            role=role,
            display_name=display_name.strip(),
            queue_member_name=queue_member_name.strip(),
            queue_member_interface=queue_member_interface.strip(),
        )
    except CallCenterError as exc:
        return _refused(request, console, session, exc)
    return _done()


@router.post("/users/{user_id}/active")
def set_active(
    request: Request,
    user_id: UserId,
    console: AdminPost,
    session: SessionDep,
    active: Annotated[bool, Form()],
) -> Response:
    try:
        users.update_user(session, user_id=user_id, active=active)
    except CallCenterError as exc:
        return _refused(request, console, session, exc)
    return _done()


@router.post("/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: UserId,
    console: AdminPost,
    session: SessionDep,
    password: Annotated[str, Form()],
) -> Response:
    try:
        users.set_password(session, user_id=user_id, password=password)
    except CallCenterError as exc:
        return _refused(request, console, session, exc)
    return _done()


@router.post("/agencies")
def add_agency(
    request: Request,
    console: AdminPost,
    session: SessionDep,
    code: Annotated[str, Form()],
    name: Annotated[str, Form()],
    kind: Annotated[str, Form()],
) -> Response:
    try:
        if not AGENCY_CODE.fullmatch(code.strip()):
            raise InvalidInput("an agency code is 2 to 32 of a-z, 0-9, _ and -", field="code")
        agencies.add(session, code=code.strip(), name=name.strip(), kind=kind.strip())
    except CallCenterError as exc:
        return _refused(request, console, session, exc)
    return _done()


@router.post("/agencies/{code}/active")
def set_agency_active(
    request: Request,
    code: str,
    console: AdminPost,
    session: SessionDep,
    active: Annotated[bool, Form()],
) -> Response:
    try:
        agencies.update(session, code=code, active=active)
    except CallCenterError as exc:
        return _refused(request, console, session, exc)
    return _done()
