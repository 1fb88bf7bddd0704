"""The demo's accounts: one of each role, two operators linked to the recordings' queue members."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Role, User
from callcenter.users import service


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: Role
    display_name: str
    queue_member_name: str | None = None
    queue_member_interface: str | None = None


ACCOUNTS = (
    DemoAccount("admin", "demo-admin-112", Role.admin, "Admin Demo"),
    DemoAccount("supervisor", "demo-supervisor-112", Role.supervisor, "Supervisor Demo"),
    DemoAccount("andi", "demo-andi-112", Role.operator, "Andi", "Operator Andi", "PJSIP/op1"),
    DemoAccount("maria", "demo-maria-112", Role.operator, "Maria", "Operator Maria", "PJSIP/op2"),
)


def ensure(session: Session) -> list[DemoAccount]:
    """Create the demo accounts that do not exist yet; return all of them."""
    known = set(session.scalars(select(User.username)))
    for account in ACCOUNTS:
        if account.username not in known:
            service.create_user(
                session,
                username=account.username,
                password=account.password,
                role=account.role,
                display_name=account.display_name,
                queue_member_name=account.queue_member_name,
                queue_member_interface=account.queue_member_interface,
            )
    return list(ACCOUNTS)
