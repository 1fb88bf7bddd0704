"""Log-in, log-out and the language switch of the console."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from callcenter.api.auth import authenticate
from callcenter.api.deps import SettingsDep, WriteThreadsDep
from callcenter.console import i18n, web
from callcenter.console.web import OperatorPost
from callcenter.errors import TooManyRequests, Unauthorized
from callcenter.users import service as users

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
async def login(
    request: Request,
    settings: SettingsDep,
    writes: WriteThreadsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    web.check_login_csrf(request, csrf)
    try:
        # The API's own check: the same accounts, roles, limits and lockout.
        user = await authenticate(request, settings, writes, username=username, password=password)
    except TooManyRequests:
        return _login_page(request, "locked", 429)
    except Unauthorized:
        return _login_page(request, "login_failed", 401)
    token = web.new_session_token(user, settings)
    response = RedirectResponse(web.home_of(user), status_code=303)
    web.set_session_cookie(response, request, token, settings.token_ttl_minutes)
    response.delete_cookie(web.LOGIN_CSRF_COOKIE, path=web.PREFIX)
    return response


@router.post("/logout")
async def logout(console: OperatorPost, writes: WriteThreadsDep) -> Response:
    # Every token of the user ends here, as the API's log-out does: a copied cookie is useless.
    await writes.run(partial(users.revoke_tokens, user_id=console.user.id))
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
