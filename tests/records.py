"""A call center's worth of records of every kind, and a table-by-table comparison of two stores.

Backups, restores and the retention job are judged by these: every call, event,
classification, incident and follow-up step must be there, as it was.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import callcenter.all_models  # noqa: F401
from callcenter.incidents import agencies
from callcenter.incidents.service import AgencyRequest, Location, create_incident
from callcenter.models import Base, Classification, ClassificationChange, User
from callcenter.settings import Settings
from tests.builders import make_call, make_caller, make_user


def seed_records(session: Session, settings: Settings, *, caller: str = "081234567890") -> int:
    """A classified emergency call with its history, an incident and an agency assignment.

    Returns the call's id.
    """
    agencies.seed(session, settings.agencies)
    operator = make_user(session)
    key = make_caller(session, number=caller, call_count=1, emergency_count=1)
    call = make_call(
        session, caller=caller, classification=Classification.emergency, caller_key_id=key.id
    )
    call.classified_by_id = operator.id
    session.add(
        ClassificationChange(
            call_id=call.id,
            changed_by_id=operator.id,
            old_classification=None,
            new_classification=Classification.emergency,
            note="rumah terbakar",
        )
    )
    session.flush()
    create_incident(
        session,
        settings=settings,
        user=session.get_one(User, operator.id),
        call_id=call.id,
        category="fire",
        location=Location(district="Kota Kefamenanu", village="Benpasi", text="dekat pasar"),
        summary="rumah terbakar",
        assign=[AgencyRequest("damkar_ttu", primary=True), AgencyRequest("polres_ttu")],
    )
    return call.id


def table_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in connection.execute(query)]
    return rows
