"""Bearer-token authentication (OAuth2 password flow) and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy.orm import Session

from callcenter.api.deps import SessionDep, SettingsDep, WriteThreadsDep
from callcenter.api.writes import WriteThreads
from callcenter.db import AnyRow, utcnow
from callcenter.errors import Forbidden, TooManyRequests, Unauthorized
from callcenter.models import Role, User
from callcenter.settings import Settings
from callcenter.users import login as login_service
from callcenter.users import service
from callcenter.users.login import LoginGuard
from callcenter.users.security import TokenClaims, issue_token, read_token_claims

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: Role


def claims_from_token(token: str | None, settings: Settings) -> TokenClaims:
    if not token:
        raise Unauthorized("a bearer token is required")
    return read_token_claims(token, secret=settings.token_secret.get_secret_value())


def user_id_from_token(token: str | None, settings: Settings) -> int:
    return claims_from_token(token, settings).user_id


async def token_claims(
    token: Annotated[str | None, Depends(bearer_token)], settings: SettingsDep
) -> TokenClaims:
    """The claims of the request's bearer token: a pure check, so no worker thread."""
    return claims_from_token(token, settings)


TokenClaimsDep = Annotated[TokenClaims, Depends(token_claims)]


@router.post("/token", responses={429: {"description": "Too many failed logins or logins."}})
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    settings: SettingsDep,
    writes: WriteThreadsDep,
    request: Request,
) -> Token:
    user = await authenticate(
        request, settings, writes, username=form.username, password=form.password
    )
    token = issue_token(
        user_id=user.id,
        secret=settings.token_secret.get_secret_value(),
        ttl=timedelta(minutes=settings.token_ttl_minutes),
        generation=user.token_generation,
    )
    return Token(access_token=token, role=user.role)


async def authenticate(
    request: Request, settings: Settings, writes: WriteThreads, *, username: str, password: str
) -> AnyRow:
    """The one log-in check, for the API's token and the console's session cookie: per-address
    and per-name limits, the lockout (429, the same for every name), then the password.

    No database session is open while the password is checked (see users.login).
    """
    guard: LoginGuard = request.app.state.login_guard
    address = request.client.host if request.client else ""
    lockout = timedelta(seconds=settings.login_lockout_seconds)
    with guard.attempt(address):
        now = utcnow()
        user, locked_for = await run_in_threadpool(
            login_service.subject, request.app.state.engine, username=username, now=now
        )
        if locked_for:
            # The same for every name, existing or not; no password is checked.
            raise TooManyRequests(login_service.LOCKED_MESSAGE, retry_after=locked_for)
        right = await guard.verify(user.password_hash if user else None, password)
        if not right:
            guard.failed(address)
            await writes.run(
                partial(
                    login_service.record_failure,
                    username=username,
                    max_failures=settings.login_max_failures,
                    lockout=lockout,
                    now=now,
                )
            )
            raise Unauthorized("wrong username or password")
        await writes.run(partial(login_service.record_success, username=username))
    assert user is not None
    if not user.active:
        raise Unauthorized("this user is disabled")
    return user


@router.post("/logout", status_code=204, responses={401: {"description": "No valid token."}})
async def logout(token: TokenClaimsDep, writes: WriteThreadsDep) -> Response:
    """Revokes every token of the user (this one included)."""
    await writes.run(partial(service.revoke_tokens, user_id=token.user_id))
    return Response(status_code=204)


def active_user(session: Session, token: TokenClaims) -> User:
    """The token's user, if still active and the token not revoked."""
    user = session.get(User, token.user_id, populate_existing=True)
    admit(user, Role.operator, token)
    assert user is not None
    return user


def admit(user: User | AnyRow | None, minimum: Role, token: TokenClaims | None = None) -> None:
    """Lets in an active user (anything with ``active``, ``role`` and ``token_generation``) of
    at least ``minimum`` whose ``token`` was not revoked since it was issued."""
    if user is None or not user.active:
        raise Unauthorized("the token's user is unknown or disabled")
    if token is not None and user.token_generation != token.generation:
        raise Unauthorized("this token was revoked: log in again")
    if user.role.rank < minimum.rank:
        raise Forbidden(f"this needs the {minimum.value} role or higher")


def current_user(token: TokenClaimsDep, session: SessionDep) -> User:
    return active_user(session, token)


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(minimum: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency admitting users whose role is at least ``minimum`` (operator < admin)."""

    # async: a pure check needs no worker thread.
    async def check(user: CurrentUser) -> User:
        admit(user, minimum)
        return user

    return check


OperatorUser = Annotated[User, Depends(require_role(Role.operator))]
SupervisorUser = Annotated[User, Depends(require_role(Role.supervisor))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]
