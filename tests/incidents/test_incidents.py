from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.db import utcnow
from callcenter.errors import Conflict
from callcenter.incidents import service
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, AssignmentChange, Incident
from callcenter.models import Classification, Role
from tests.builders import make_call, make_user
from tests.conftest import LoginFn


def incident_body(call_id: int, **changes: Any) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "category": "fire",
        "district": "Kota Kefamenanu",
        "village": "Benpasi",
        "location_text": "behind the market",
        "latitude": -9.447,
        "longitude": 124.478,
        "summary": "house on fire, one person inside",
        "assignments": [
            {"agency_code": "damkar_ttu", "primary": True},
            {"agency_code": "rsud_kefa"},
        ],
        **changes,
    }


def test_an_emergency_call_gets_an_incident_with_agencies(
    client: TestClient, login: LoginFn, emergency_call_id: int
) -> None:
    response = client.post(
        "/api/v1/incidents", json=incident_body(emergency_call_id), headers=login(Role.operator)
    )
    assert response.status_code == 201, response.text
    incident = response.json()
    assert incident["district"] == "Kota Kefamenanu"
    assert incident["latitude"] == -9.447
    assignments = {a["agency"]["code"]: a for a in incident["assignments"]}
    assert assignments["damkar_ttu"]["is_primary"] is True
    assert assignments["rsud_kefa"]["is_primary"] is False
    assert {a["status"] for a in assignments.values()} == {"pending"}
    assert assignments["damkar_ttu"]["history"][0]["new_status"] == "pending"
    by_call = client.get(
        f"/api/v1/calls/{emergency_call_id}/incident", headers=login(Role.operator)
    )
    assert by_call.json()["id"] == incident["id"]


def test_follow_up_runs_through_its_steps_and_records_each(
    client: TestClient,
    login: LoginFn,
    emergency_call_id: int,
    session_factory: sessionmaker[Session],
) -> None:
    headers = login(Role.operator)
    incident = client.post(
        "/api/v1/incidents", json=incident_body(emergency_call_id), headers=headers
    ).json()
    primary = next(a for a in incident["assignments"] if a["is_primary"])
    url = f"/api/v1/assignments/{primary['id']}/status"
    for status in ("dispatched", "acknowledged", "resolved"):
        response = client.post(url, json={"status": status}, headers=headers)
        assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "resolved"
    assert [(s["old_status"], s["new_status"]) for s in body["history"]] == [
        (None, "pending"),
        ("pending", "dispatched"),
        ("dispatched", "acknowledged"),
        ("acknowledged", "resolved"),
    ]
    assert all(s["changed_by_id"] == body["history"][0]["changed_by_id"] for s in body["history"])
    # Resolved is final.
    again = client.post(url, json={"status": "not_followed_up", "reason": "x"}, headers=headers)
    assert again.status_code == 409
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AssignmentChange)) == 5


def test_invalid_steps_are_refused_and_change_nothing(
    client: TestClient,
    login: LoginFn,
    emergency_call_id: int,
    session_factory: sessionmaker[Session],
) -> None:
    headers = login(Role.operator)
    incident = client.post(
        "/api/v1/incidents", json=incident_body(emergency_call_id), headers=headers
    ).json()
    assignment = incident["assignments"][0]
    url = f"/api/v1/assignments/{assignment['id']}/status"
    skipped = client.post(url, json={"status": "resolved"}, headers=headers)
    assert skipped.status_code == 409
    no_reason = client.post(url, json={"status": "not_followed_up"}, headers=headers)
    assert no_reason.status_code == 422
    unknown = client.post(url, json={"status": "teleported"}, headers=headers)
    assert unknown.status_code == 422
    stale = client.post(url, json={"status": "dispatched", "version": 99}, headers=headers)
    assert stale.status_code == 409
    missing = client.post("/api/v1/assignments/999999/status", json={"status": "dispatched"})
    assert missing.status_code == 401
    missing = client.post(
        "/api/v1/assignments/999999/status", json={"status": "dispatched"}, headers=headers
    )
    assert missing.status_code == 404
    with session_factory() as session:
        row = session.get(Assignment, assignment["id"])
        assert row is not None
        assert row.status == "pending"
        assert session.scalar(select(func.count()).select_from(AssignmentChange)) == 2
    dropped = client.post(
        url, json={"status": "not_followed_up", "reason": "no vehicle"}, headers=headers
    )
    assert dropped.status_code == 200
    assert dropped.json()["status_reason"] == "no vehicle"


def test_bad_incidents_are_refused(
    client: TestClient,
    login: LoginFn,
    emergency_call_id: int,
    session_factory: sessionmaker[Session],
) -> None:
    headers = login(Role.operator)
    with session_factory.begin() as session:
        prank_id = make_call(session, classification=Classification.prank).id
    cases = [
        (incident_body(prank_id), 409),
        (incident_body(999999), 404),
        (incident_body(emergency_call_id, category="alien_invasion"), 422),
        (incident_body(emergency_call_id, district="Atlantis"), 422),
        (incident_body(emergency_call_id, village="Eban"), 422),  # not in Kota Kefamenanu
        (incident_body(emergency_call_id, latitude=95.0), 422),
        (incident_body(emergency_call_id, longitude=None), 422),
        (incident_body(emergency_call_id, assignments=[{"agency_code": "rsud_kefa"}]), 422),
        (
            incident_body(
                emergency_call_id,
                assignments=[
                    {"agency_code": "rsud_kefa", "primary": True},
                    {"agency_code": "damkar_ttu", "primary": True},
                ],
            ),
            422,
        ),
        (
            incident_body(
                emergency_call_id, assignments=[{"agency_code": "nobody", "primary": True}]
            ),
            404,
        ),
    ]
    for body, expected in cases:
        response = client.post("/api/v1/incidents", json=body, headers=headers)
        assert response.status_code == expected, (body, response.text)
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 0
        assert session.scalar(select(func.count()).select_from(Assignment)) == 0
    assert (
        client.post(
            "/api/v1/incidents", json=incident_body(emergency_call_id), headers=headers
        ).status_code
        == 201
    )
    twice = client.post("/api/v1/incidents", json=incident_body(emergency_call_id), headers=headers)
    assert twice.status_code == 409


def test_more_agencies_later_but_one_primary(
    client: TestClient, login: LoginFn, emergency_call_id: int
) -> None:
    headers = login(Role.operator)
    incident = client.post(
        "/api/v1/incidents",
        json=incident_body(emergency_call_id, assignments=[]),
        headers=headers,
    ).json()
    url = f"/api/v1/incidents/{incident['id']}/assignments"
    assert client.post(url, json={"agency_code": "polres_ttu"}, headers=headers).status_code == 422
    first = client.post(url, json={"agency_code": "polres_ttu", "primary": True}, headers=headers)
    assert first.status_code == 201
    second = client.post(url, json={"agency_code": "bpbd_ttu", "primary": True}, headers=headers)
    assert second.status_code == 409
    same = client.post(url, json={"agency_code": "polres_ttu"}, headers=headers)
    assert same.status_code == 409
    helper = client.post(url, json={"agency_code": "bpbd_ttu"}, headers=headers)
    assert helper.status_code == 201
    client.patch("/api/v1/agencies/kodim_1618", json={"active": False}, headers=login(Role.admin))
    disabled = client.post(url, json={"agency_code": "kodim_1618"}, headers=headers)
    assert disabled.status_code == 409


def test_assignments_not_acknowledged_in_time_are_overdue(
    client: TestClient,
    login: LoginFn,
    emergency_call_id: int,
    session_factory: sessionmaker[Session],
) -> None:
    headers = login(Role.operator)
    incident = client.post(
        "/api/v1/incidents", json=incident_body(emergency_call_id), headers=headers
    ).json()
    ids = {a["agency"]["code"]: a["id"] for a in incident["assignments"]}
    assert client.get("/api/v1/assignments/overdue", headers=headers).json() == []
    # Both were assigned 31 minutes ago (the configured limit is 30).
    with session_factory.begin() as session:
        session.execute(update(Assignment).values(assigned_at=utcnow() - timedelta(minutes=31)))
    client.post(
        f"/api/v1/assignments/{ids['damkar_ttu']}/status",
        json={"status": "dispatched"},
        headers=headers,
    )
    overdue = client.get("/api/v1/assignments/overdue", headers=headers).json()
    assert {a["agency"]["code"] for a in overdue} == {"damkar_ttu", "rsud_kefa"}
    assert all(a["minutes_waiting"] >= 31 for a in overdue)
    client.post(
        f"/api/v1/assignments/{ids['damkar_ttu']}/status",
        json={"status": "acknowledged"},
        headers=headers,
    )
    overdue = client.get("/api/v1/assignments/overdue", headers=headers).json()
    assert [a["agency"]["code"] for a in overdue] == ["rsud_kefa"]


def test_options_list_categories_and_districts(
    client: TestClient, login: LoginFn, seeded: None
) -> None:
    options = client.get("/api/v1/incident-options", headers=login(Role.operator)).json()
    assert "search_and_rescue" in options["categories"]
    assert len(options["districts"]) == 24
    assert options["followup_overdue_minutes"] == 30


def test_two_operators_stepping_at_once_get_a_conflict_not_an_error(
    client: TestClient,
    login: LoginFn,
    emergency_call_id: int,
    session_factory: sessionmaker[Session],
) -> None:
    incident = client.post(
        "/api/v1/incidents", json=incident_body(emergency_call_id), headers=login(Role.operator)
    ).json()
    assignment_id = incident["assignments"][0]["id"]
    with session_factory() as first, session_factory() as second:
        user = make_user(first)
        first.commit()
        # Read before the other step (kept referenced: the identity map holds it weakly).
        seen = second.get(Assignment, assignment_id)
        assert seen is not None
        assert seen.version == 1
        service.change_status(
            first,
            user=user,
            assignment_id=assignment_id,
            status=FollowUp.dispatched,
            reason=None,
            expected_version=None,
            now=utcnow(),
        )
        first.commit()
        with pytest.raises(Conflict):
            service.change_status(
                second,
                user=user,
                assignment_id=assignment_id,
                status=FollowUp.not_followed_up,
                reason="duplicate",
                expected_version=None,
                now=utcnow(),
            )
        second.rollback()
    with session_factory() as session:
        row = session.get(Assignment, assignment_id)
        assert row is not None
        assert row.status is FollowUp.dispatched
