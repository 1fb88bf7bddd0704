"""How agencies answered: time to acknowledge and resolve (median, p90), within target,
escalations; over REST and as columns of the monthly recap."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.app import create_app
from callcenter.db import utcnow
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Agency, Assignment
from callcenter.models import Role
from callcenter.notify import ack, escalation
from callcenter.settings import Settings
from tests.builders import PASSWORD, make_user
from tests.notify.conftest import MakeIncident, contacts, with_notify


def test_response_times_per_agency_over_rest_and_in_the_monthly_recap(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
) -> None:
    settings = with_notify(
        settings, agencies={"damkar_ttu": contacts(ack_minutes_by_category={"fire": 5})}
    )
    fires = [make_incident("damkar_ttu") for _ in range(3)]
    make_incident("rsud_kefa", category="medical")
    start = utcnow() - timedelta(days=1)
    with session_factory.begin() as session:
        for assignment in session.scalars(select(Assignment)):
            assignment.assigned_at = start
    minutes = {fires[0]: (2, 30), fires[1]: (4, 60), fires[2]: (20, None)}

    def acknowledge(incident_id: int, at: int, target: FollowUp) -> None:
        with session_factory.begin() as session:
            assignment_id = session.scalars(
                select(Assignment.id).where(Assignment.incident_id == incident_id)
            ).one()
            ack.acknowledge(
                session,
                assignment_id=assignment_id,
                target=target,
                actor="petugas",
                via="link",
                now=start + timedelta(minutes=at),
            )

    for incident_id in fires[:2]:
        acknowledge(incident_id, minutes[incident_id][0], FollowUp.acknowledged)
    with session_factory.begin() as session:  # 11 minutes on: the third fire is escalated
        escalation.scan(session, settings=settings, now=start + timedelta(minutes=11))
    acknowledge(fires[2], 20, FollowUp.acknowledged)
    acknowledge(fires[0], 30, FollowUp.resolved)
    acknowledge(fires[1], 60, FollowUp.resolved)
    with session_factory.begin() as session:
        make_user(session, username="spv", role=Role.supervisor)
        assert session.scalars(select(Agency.code).where(Agency.code == "damkar_ttu")).one()

    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "spv", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        rows = client.get(
            "/api/v1/stats/agency-response",
            params={"from": "2025-05-01", "to": "2025-05-01"},
            headers=headers,
        ).json()
        recap_csv = client.get(
            "/api/v1/reports/monthly", params={"month": "2025-05", "format": "csv"}, headers=headers
        ).text
        recap_html = client.get(
            "/api/v1/reports/monthly",
            params={"month": "2025-05", "format": "html"},
            headers=headers,
        ).text

    by_code = {r["code"]: r for r in rows}
    damkar = by_code["damkar_ttu"]
    assert (damkar["assignments"], damkar["acknowledged"], damkar["resolved"]) == (3, 3, 2)
    assert (damkar["ack_p50_seconds"], damkar["ack_p90_seconds"]) == (240, 1200)
    assert (damkar["resolve_p50_seconds"], damkar["resolve_p90_seconds"]) == (1800, 3600)
    assert damkar["ack_within_target"] == 0.6667
    assert damkar["escalations"] == 1
    rsud = by_code["rsud_kefa"]
    assert (rsud["assignments"], rsud["acknowledged"], rsud["ack_p50_seconds"]) == (1, 0, None)
    assert (rsud["ack_within_target"], rsud["escalations"]) == (0.0, 0)
    assert by_code["polres_ttu"]["ack_within_target"] is None

    table = list(csv.reader(io.StringIO(recap_csv)))
    header = table[0]
    assert header[-6:] == [
        "ack_p50_min",
        "ack_p90_min",
        "resolve_p50_min",
        "resolve_p90_min",
        "ack_within_target",
        "escalations",
    ]
    damkar_row = next(row for row in table if row[0] == "damkar_ttu")
    assert damkar_row[-6:] == ["4.0", "20.0", "30.0", "60.0", "66.7%", "1"]
    assert "ack_within_target" in recap_html
    assert "66.7%" in recap_html
