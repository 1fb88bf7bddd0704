"""Log-in, log-out and the language switch of the console."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.deps import SettingsDep
from callcenter.console import i18n, web
from callcenter.console.web import OperatorPost
from callcenter.errors import Unauthorized
from callcenter.users import service

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)


def _login_page(request: Request, message: str = "", status_code: int = 200) -> HTMLResponse:
    token = web.new_login_csrf()
    response = web.render(
        request, "login.html", None, status_code=status_code, message=message, login_csrf=token
    )
    response.set_cookie(
        web.LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=web.is_tls(request),
        path=web.PREFIX,
    )
    return response


@router.get("/login")
def login_form(request: Request, expired: bool = False) -> HTMLResponse:
    return _login_page(request, "session_expired" if expired else "")


@router.post("/login")
def login(
    request: Request,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    web.check_login_csrf(request, csrf)
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        try:
            # The API's own check: the same accounts, roles and lockout.
            user = service.authenticate(
                session,
                username=username,
                password=password,
                max_failures=settings.login_max_failures,
                lockout=timedelta(seconds=settings.login_lockout_seconds),
            )
        except Unauthorized as exc:
            session.commit()  # a refused login still counts towards the lockout
            locked = "too many" in exc.message
            return _login_page(request, "locked" if locked else "login_failed", 401)
        session.commit()
        token = web.new_session_token(user, settings)
        home = web.home_of(user)
    response = RedirectResponse(home, status_code=303)
    web.set_session_cookie(response, request, token, settings.token_ttl_minutes)
    response.delete_cookie(web.LOGIN_CSRF_COOKIE, path=web.PREFIX)
    return response


@router.post("/logout")
def logout(_console: OperatorPost) -> Response:
    response = RedirectResponse(f"{web.PREFIX}/login", status_code=303)
    response.delete_cookie(web.SESSION_COOKIE, path=web.PREFIX)
    return response


@router.get("/lang/{lang}")
def switch_language(lang: str, next: str = "/console/") -> Response:
    # Only a path of the console: never an open redirect to another site.
    target = next if next.startswith(web.PREFIX + "/") and "//" not in next else web.PREFIX + "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        web.LANG_COOKIE,
        i18n.pick(lang),
        max_age=365 * 24 * 3600,
        samesite="lax",
        path=web.PREFIX,
    )
    return response
