"""Bearer-token authentication (OAuth2 password flow) and role checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.deps import SessionDep, SettingsDep
from callcenter.db import AnyRow
from callcenter.errors import Forbidden, Unauthorized
from callcenter.models import Role, User
from callcenter.settings import Settings
from callcenter.users import service
from callcenter.users.security import issue_token, read_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: Role


@router.post("/token")
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    settings: SettingsDep,
    request: Request,
) -> Token:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        try:
            user = service.authenticate(
                session,
                username=form.username,
                password=form.password,
                max_failures=settings.login_max_failures,
                lockout=timedelta(seconds=settings.login_lockout_seconds),
            )
            token = issue_token(
                user_id=user.id,
                secret=settings.token_secret.get_secret_value(),
                ttl=timedelta(minutes=settings.token_ttl_minutes),
            )
            role = user.role
        finally:
            # A refused login still counts towards the lockout, so commit either way.
            session.commit()
    return Token(access_token=token, role=role)


def user_id_from_token(token: str | None, settings: Settings) -> int:
    if not token:
        raise Unauthorized("a bearer token is required")
    return read_token(token, secret=settings.token_secret.get_secret_value())


async def token_user_id(
    token: Annotated[str | None, Depends(_bearer)], settings: SettingsDep
) -> int:
    """The user id in the request's bearer token: a pure check, so no worker thread."""
    return user_id_from_token(token, settings)


TokenUserId = Annotated[int, Depends(token_user_id)]


def active_user(session: Session, user_id: int) -> User:
    """The token's user, if still active."""
    user = session.get(User, user_id)
    admit(user, Role.operator)
    assert user is not None
    return user


def admit(user: User | AnyRow | None, minimum: Role) -> None:
    """Lets in an active user (anything with ``active`` and ``role``) of at least ``minimum``."""
    if user is None or not user.active:
        raise Unauthorized("the token's user is unknown or disabled")
    if user.role.rank < minimum.rank:
        raise Forbidden(f"this needs the {minimum.value} role or higher")


def current_user(user_id: TokenUserId, session: SessionDep) -> User:
    return active_user(session, user_id)


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
