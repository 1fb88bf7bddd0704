"""Users and their tokens (logging in: users.login). The caller's session commits."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from callcenter.errors import Conflict, InvalidInput, NotFound
from callcenter.models import LoginFailure, Role, User
from callcenter.users import login
from callcenter.users.security import hash_password

MIN_PASSWORD_LENGTH = 8


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    queue_member_name: str | None = None,
    queue_member_interface: str | None = None,
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidInput("username must be 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name,
        queue_member_name=queue_member_name,
        queue_member_interface=queue_member_interface,
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def update_user(
    session: Session,
    *,
    user_id: int,
    role: Role | None = None,
    active: bool | None = None,
    display_name: str | None = None,
    queue_member_name: str | None = None,
    queue_member_interface: str | None = None,
) -> User:
    """Change a user's role, active flag or names; the last active admin cannot be removed."""
    user = session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound(f"user {user_id} not found")
    stops_being_admin = (
        user.role is Role.admin
        and user.active
        and ((role is not None and role is not Role.admin) or active is False)
    )
    if stops_being_admin and _active_admins(session) <= 1:
        raise Conflict("this is the last active admin: make another admin first")
    if (role is not None and role is not user.role) or (active is not None and not active):
        user.token_generation += 1  # tokens issued for the old role (or account) stop working
    if role is not None:
        user.role = role
    if active is not None:
        user.active = active
        if active:
            # Re-enabled: start from a clean slate rather than a stale lockout.
            session.execute(delete(LoginFailure).where(LoginFailure.username == user.username))
    if display_name is not None:
        user.display_name = display_name
    if queue_member_name is not None:
        user.queue_member_name = queue_member_name or None
    if queue_member_interface is not None:
        user.queue_member_interface = queue_member_interface or None
    session.flush()
    return user


def revoke_tokens(connection: Connection, *, user_id: int) -> None:
    """Every token issued to the user so far stops working (log-out)."""
    connection.execute(
        update(User).where(User.id == user_id).values(token_generation=User.token_generation + 1)
    )


def _active_admins(session: Session) -> int:
    # Locked, so two admins disabling each other at once cannot leave the center with none.
    admins = session.scalars(
        select(User.id).where(User.role == Role.admin, User.active).with_for_update()
    )
    return len(admins.all())


def set_password(session: Session, *, user_id: int, password: str) -> User:
    """An admin's password reset: the new password, and a clean slate for the lockout."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    user = get_user(session, user_id=user_id)
    user.password_hash = hash_password(password)
    # A clean slate for the lockout, which counts failures by name (users.login).
    login.record_success(session.connection(), username=user.username)
    session.flush()
    return user


def set_password_by_name(session: Session, *, username: str, password: str) -> User:
    """The same reset by username (`callcenter user reset-password NAME`)."""
    user_id = session.scalar(select(User.id).where(User.username == username))
    if user_id is None:
        raise NotFound(f"no user {username!r}")
    return set_password(session, user_id=user_id, password=password)
