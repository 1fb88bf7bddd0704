"""Agencies: seeded from config on migrate, then added and disabled by admins."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.errors import Conflict, NotFound
from callcenter.incidents.models import Agency
from callcenter.settings import AgencyConfig


def seed(session: Session, configured: Iterable[AgencyConfig]) -> list[str]:
    """Add the configured agencies whose code is new; return their codes.

    Existing rows are left alone: once loaded, the table (edited by admins) is the truth.
    """
    known = set(session.scalars(select(Agency.code)))
    added = []
    for agency in configured:
        if agency.code not in known:
            session.add(Agency(code=agency.code, name=agency.name, kind=agency.kind, active=True))
            known.add(agency.code)
            added.append(agency.code)
    session.flush()
    return added


def list_agencies(session: Session, *, include_inactive: bool) -> list[Agency]:
    query = select(Agency).order_by(Agency.code)
    if not include_inactive:
        query = query.where(Agency.active.is_(True))
    return list(session.scalars(query))


def get_by_code(session: Session, code: str) -> Agency:
    agency = session.scalars(select(Agency).where(Agency.code == code)).one_or_none()
    if agency is None:
        raise NotFound(f"no agency with code {code!r}", code=code)
    return agency


def add(session: Session, *, code: str, name: str, kind: str) -> Agency:
    if session.scalars(select(Agency.id).where(Agency.code == code)).first() is not None:
        raise Conflict(f"an agency with code {code!r} exists already", code=code)
    agency = Agency(code=code, name=name, kind=kind, active=True)
    session.add(agency)
    session.flush()
    return agency


def update(
    session: Session,
    *,
    code: str,
    name: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
) -> Agency:
    agency = get_by_code(session, code)
    if name is not None:
        agency.name = name
    if kind is not None:
        agency.kind = kind
    if active is not None:
        agency.active = active
    session.flush()
    return agency
