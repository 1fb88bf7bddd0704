"""How agencies answered: time to acknowledge and to resolve, share within target, escalations.

Times run from the assignment to the first step that reached ``acknowledged`` (or
``resolved``), by whoever recorded it (the agency's link or SMS, or an operator). Assignments
count by their call's local day, as the rest of the statistics do.

>>> nearest_rank([60, 120, 180, 600], 50), nearest_rank([60, 120, 180, 600], 90)
(120, 600)
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment, AssignmentChange, Incident
from callcenter.localtime import day_key
from callcenter.notify.models import Audience, Notification, NotificationKind
from callcenter.settings import Settings


class AgencyResponse(BaseModel):
    code: str
    name: str
    assignments: int
    acknowledged: int
    resolved: int
    ack_p50_seconds: int | None
    ack_p90_seconds: int | None
    resolve_p50_seconds: int | None
    resolve_p90_seconds: int | None
    # Acknowledged within the agency's time (per category), over all its assignments.
    ack_within_target: float | None
    escalations: int


RESPONSE_COLUMNS = (
    "ack_p50_min",
    "ack_p90_min",
    "resolve_p50_min",
    "resolve_p90_min",
    "ack_within_target",
    "escalations",
)


def nearest_rank(values: list[int], p: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def agency_response(
    session: Session, first: date, last: date, settings: Settings
) -> list[AgencyResponse]:
    """Read as plain rows, the first steps found in SQL: a month holds thousands of assignments
    and their histories, which as ORM objects took most of the monthly recap's time."""
    in_range = Assignment.call_local_day.between(day_key(first), day_key(last))
    assignments = session.execute(
        select(Assignment.id, Assignment.agency_id, Assignment.assigned_at, Incident.category)
        .join(Incident, Incident.id == Assignment.incident_id)
        .where(in_range)
    ).all()
    reached: dict[tuple[int, FollowUp], datetime] = {
        (assignment_id, status): at
        for assignment_id, status, at in session.execute(
            select(
                AssignmentChange.assignment_id,
                AssignmentChange.new_status,
                func.min(AssignmentChange.changed_at),
            )
            .join(Assignment, Assignment.id == AssignmentChange.assignment_id)
            .where(
                in_range,
                AssignmentChange.new_status.in_([FollowUp.acknowledged, FollowUp.resolved]),
            )
            .group_by(AssignmentChange.assignment_id, AssignmentChange.new_status)
        )
    }
    escalated = set(
        session.scalars(
            select(Notification.assignment_id)
            .join(Assignment, Assignment.id == Notification.assignment_id)
            .where(
                in_range,
                Notification.kind == NotificationKind.escalation,
                Notification.audience == Audience.supervisor,
            )
        )
    )
    by_agency: dict[int, list[Any]] = defaultdict(list)
    for row in assignments:
        by_agency[row.agency_id].append(row)
    default_minutes = settings.incidents.followup_overdue_minutes
    rows = []
    for agency in session.scalars(select(Agency).order_by(Agency.id)):
        mine = by_agency.get(agency.id, [])
        if not mine and not agency.active:
            continue
        ack_times, resolve_times, within = [], [], 0
        for a in mine:
            acked = reached.get((a.id, FollowUp.acknowledged))
            resolved = reached.get((a.id, FollowUp.resolved))
            if acked is not None:
                seconds = int((acked - a.assigned_at).total_seconds())
                ack_times.append(seconds)
                target = settings.notify.ack_minutes_for(agency.code, a.category, default_minutes)
                within += seconds <= target * 60
            if resolved is not None:
                resolve_times.append(int((resolved - a.assigned_at).total_seconds()))
        rows.append(
            AgencyResponse(
                code=agency.code,
                name=agency.name,
                assignments=len(mine),
                acknowledged=len(ack_times),
                resolved=len(resolve_times),
                ack_p50_seconds=nearest_rank(ack_times, 50),
                ack_p90_seconds=nearest_rank(ack_times, 90),
                resolve_p50_seconds=nearest_rank(resolve_times, 50),
                resolve_p90_seconds=nearest_rank(resolve_times, 90),
                ack_within_target=round(within / len(mine), 4) if mine else None,
                escalations=sum(a.id in escalated for a in mine),
            )
        )
    return rows


def _minutes(seconds: int | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def response_cells(row: AgencyResponse | None) -> list[str]:
    """The recap's extra columns for one agency (RESPONSE_COLUMNS), blank when unknown."""
    if row is None:
        return [""] * len(RESPONSE_COLUMNS)
    share = "" if row.ack_within_target is None else f"{row.ack_within_target * 100:.1f}%"
    return [
        _minutes(row.ack_p50_seconds),
        _minutes(row.ack_p90_seconds),
        _minutes(row.resolve_p50_seconds),
        _minutes(row.resolve_p90_seconds),
        share,
        str(row.escalations),
    ]


def recap_rows(agency_rows: list[list[Any]], responses: list[AgencyResponse]) -> list[list[Any]]:
    """The recap's rows by agency (first cell: its code) with the response columns added."""
    by_code = {r.code: r for r in responses}
    return [[*row, *response_cells(by_code.get(str(row[0])))] for row in agency_rows]
