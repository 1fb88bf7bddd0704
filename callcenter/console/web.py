"""The console's plumbing: the session cookie, role guards, CSRF, and page rendering.

The session cookie holds the same signed token the API issues (so expiry and a disabled user
work alike); it is HttpOnly, SameSite=Lax, and Secure when the request came over TLS. Every
form carries a CSRF token derived from the session token with a key of its own (HMAC), so a
page of another site cannot post a form in the user's name; the log-in form, which has no
session yet, uses a random value in a cookie and in the form (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from callcenter.api.auth import admit
from callcenter.api.deps import SessionDep, SettingsDep
from callcenter.console import formats, i18n
from callcenter.db import AnyRow
from callcenter.errors import Forbidden, Unauthorized
from callcenter.models import Role, User
from callcenter.settings import Settings
from callcenter.users.security import issue_token, read_token_claims

SESSION_COOKIE = "siaga112_session"
LANG_COOKIE = "siaga112_lang"
LOGIN_CSRF_COOKIE = "siaga112_login_csrf"
PREFIX = "/console"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


class LoginRequired(Exception):
    """No valid session: the browser is sent to the log-in page."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("log in first")
        self.expired = expired


class RoleRefused(Exception):
    """A logged-in user asked for a page above their role (answered 403)."""


class CsrfRefused(Exception):
    """A form came without its CSRF token, or with a wrong one (answered 403)."""


@dataclass(frozen=True)
class ConsoleSession:
    user: User
    token: str
    csrf: str


def csrf_for(token: str, settings: Settings) -> str:
    key = hashlib.sha256(b"console-csrf:" + settings.token_secret.get_secret_value().encode())
    return hmac.new(key.digest(), token.encode(), hashlib.sha256).hexdigest()


def new_session_token(user: User | AnyRow, settings: Settings) -> str:
    return issue_token(
        user_id=user.id,
        secret=settings.token_secret.get_secret_value(),
        ttl=timedelta(minutes=settings.token_ttl_minutes),
        generation=user.token_generation,
    )


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str, ttl_minutes: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl_minutes * 60,
        httponly=True,
        samesite="lax",
        secure=is_tls(request),
        path=PREFIX,
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def check_login_csrf(request: Request, submitted: str) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, submitted):
        raise CsrfRefused


def lang_of(request: Request) -> i18n.Lang:
    return i18n.pick(request.cookies.get(LANG_COOKIE))


def _session(request: Request, session: SessionDep, settings: SettingsDep) -> ConsoleSession:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired
    try:
        claims = read_token_claims(token, secret=settings.token_secret.get_secret_value())
    except Unauthorized as exc:
        raise LoginRequired(expired=True) from exc
    user = session.get(User, claims.user_id)
    try:
        admit(user, Role.operator, claims)  # a revoked token (log-out, role change) too
    except Unauthorized as exc:
        raise LoginRequired(expired=True) from exc
    assert user is not None
    return ConsoleSession(user=user, token=token, csrf=csrf_for(token, settings))


def guard(minimum: Role) -> Any:
    """A dependency: the console session of a user of at least ``minimum``, else 403."""

    def check(console: Annotated[ConsoleSession, Depends(_session)]) -> ConsoleSession:
        try:
            admit(console.user, minimum)
        except Forbidden as exc:
            raise RoleRefused from exc
        return console

    return Depends(check)


def _checked_csrf(
    console: Annotated[ConsoleSession, Depends(_session)],
    csrf: Annotated[str, Form()] = "",
) -> ConsoleSession:
    if not hmac.compare_digest(console.csrf, csrf):
        raise CsrfRefused
    return console


def posted(minimum: Role) -> Any:
    """For form posts: the session (as ``guard``) and a valid CSRF token in the form."""

    def check(console: Annotated[ConsoleSession, Depends(_checked_csrf)]) -> ConsoleSession:
        try:
            admit(console.user, minimum)
        except Forbidden as exc:
            raise RoleRefused from exc
        return console

    return Depends(check)


OperatorPage = Annotated[ConsoleSession, guard(Role.operator)]
SupervisorPage = Annotated[ConsoleSession, guard(Role.supervisor)]
AdminPage = Annotated[ConsoleSession, guard(Role.admin)]
OperatorPost = Annotated[ConsoleSession, posted(Role.operator)]
AdminPost = Annotated[ConsoleSession, posted(Role.admin)]


def render(
    request: Request,
    name: str,
    console: ConsoleSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    lang = lang_of(request)
    tz = settings.tz

    def t(key: str) -> str:
        return i18n.translate(lang, key)

    def explain(error: str) -> str:
        """A known message in the page's language; a service's own words after a lead-in."""
        return t(error) if error in i18n.LABELS else f"{t('error')}: {error}"

    base = {
        "request": request,
        "t": t,
        "explain": explain,
        "lang": lang,
        "console": console,
        "user": console.user if console else None,
        "csrf": console.csrf if console else "",
        "prefix": PREFIX,
        "num": lambda v, d=0: formats.number(v, lang, d),
        "pct": lambda v: formats.percent(v, lang),
        "when": lambda v: formats.date_time(v, tz, lang),
        "clock": lambda v: formats.time_of_day(v, tz, lang),
        "day": lambda v: formats.day(v, lang),
        "kind": lambda v: i18n.agency_kind(lang, v),
        "dur": formats.duration,
        "iso": formats.iso,
        "Role": Role,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def table_rows(rows: Iterable[Iterable[str]]) -> Markup:
    """``<tr><td>`` rows of text, escaped: for tables of hundreds of rows, where a template loop
    spends more time on its expressions than on the figures (a year of days on the dashboard).

    >>> print(table_rows([["1 Mei 2025", "<b>"]]))
    <tr><td>1 Mei 2025</td><td>&lt;b&gt;</td></tr>
    """
    return Markup(
        "".join(
            "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
        )
    )


def home_of(user: User | AnyRow) -> str:
    if user.role is Role.admin:
        return f"{PREFIX}/admin"
    if user.role is Role.supervisor:
        return f"{PREFIX}/supervisor"
    return f"{PREFIX}/"
