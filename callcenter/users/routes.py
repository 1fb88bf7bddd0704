"""HTTP routes for users: admins manage them; anyone logged in can read themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from callcenter.api.auth import AdminUser, CurrentUser
from callcenter.api.deps import MAX_INT, SessionDep
from callcenter.users import service
from callcenter.users.schemas import UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])
UserId = Annotated[int, Path(ge=1, le=MAX_INT)]


@router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.get("")
def list_users(session: SessionDep, _admin: AdminUser) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in service.list_users(session)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> UserOut:
    user = service.create_user(
        session,
        username=body.username,
        password=body.password.get_secret_value(),
        role=body.role,
        display_name=body.display_name,
        queue_member_name=body.queue_member_name,
        queue_member_interface=body.queue_member_interface,
    )
    return UserOut.model_validate(user)


@router.get("/{user_id}")
def get_user(user_id: UserId, session: SessionDep, _admin: AdminUser) -> UserOut:
    return UserOut.model_validate(service.get_user(session, user_id=user_id))


@router.patch("/{user_id}")
def update_user(
    user_id: UserId, body: UserUpdate, session: SessionDep, _admin: AdminUser
) -> UserOut:
    user = service.update_user(
        session,
        user_id=user_id,
        role=body.role,
        active=body.active,
        display_name=body.display_name,
        queue_member_name=body.queue_member_name,
        queue_member_interface=body.queue_member_interface,
    )
    return UserOut.model_validate(user)
