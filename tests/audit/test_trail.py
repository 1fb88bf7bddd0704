"""The audit trail over the API: every user, incident, assignment and classification change and
every read of a caller's history, with who and when; admins only (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.incidents import agencies
from callcenter.models import Role, User
from callcenter.phone import normalise
from callcenter.privacy.pseudonyms import pseudonym
from callcenter.settings import Settings
from tests.builders import make_call, make_caller
from tests.conftest import LoginFn


def trail(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit", params=params, headers=headers)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def user_id(factory: sessionmaker[Session], username: str) -> int:
    with factory() as session:
        return session.scalars(select(User.id).where(User.username == username)).one()


def test_every_change_and_personal_read_is_in_the_trail_with_who(
    client: TestClient,
    login: LoginFn,
    settings: Settings,
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        agencies.seed(session, settings.agencies)
        caller = make_caller(session, number="081234567890", call_count=1)
        call_id = make_call(session, caller="081234567890", caller_key_id=caller.id).id
    admin = login(Role.admin, username="kepala")
    operator = login(Role.operator, username="andi")
    supervisor = login(Role.supervisor, username="maria")
    admin_id = user_id(session_factory, "kepala")

    created = client.post(
        "/api/v1/users",
        json={"username": "baru", "password": "a-long-password-1", "role": "operator"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    new_id = created.json()["id"]
    changed = client.patch(f"/api/v1/users/{new_id}", json={"role": "supervisor"}, headers=admin)
    assert changed.status_code == 200, changed.text
    tagged = client.put(
        f"/api/v1/calls/{call_id}/classification",
        json={"classification": "emergency"},
        headers=operator,
    )
    assert tagged.status_code == 200, tagged.text
    incident = client.post(
        "/api/v1/incidents",
        json={
            "call_id": call_id,
            "category": "fire",
            "district": "Kota Kefamenanu",
            "summary": "rumah terbakar",
            "assignments": [{"agency_code": "damkar_ttu", "primary": True}],
        },
        headers=operator,
    )
    assert incident.status_code == 201, incident.text
    assignment_id = incident.json()["assignments"][0]["id"]
    step = client.post(
        f"/api/v1/assignments/{assignment_id}/status",
        json={"status": "dispatched"},
        headers=operator,
    )
    assert step.status_code == 200, step.text
    history = client.get("/api/v1/callers/0812-3456-7890", headers=supervisor)
    assert history.status_code == 200, history.text

    entries = trail(client, admin)
    actions = [e["action"] for e in entries]
    for action in (
        "user.create",
        "user.update",
        "call.classify",
        "incident.create",
        "assignment.create",
        "assignment.status",
        "caller.history.read",
    ):
        assert action in actions, (action, actions)
    by_action = {e["action"]: e for e in reversed(entries)}  # the newest of each
    create = next(
        e for e in entries if e["action"] == "user.create" and e["entity_key"] == str(new_id)
    )
    assert create["actor_id"] == admin_id
    assert create["details"]["username"] == "baru"
    assert "password_hash" not in create["details"]
    assert "a-long-password-1" not in str(entries)
    assert by_action["user.update"]["details"] == {"role": {"from": "operator", "to": "supervisor"}}
    operator_id = user_id(session_factory, "andi")
    assert by_action["call.classify"]["actor_id"] == operator_id
    assert by_action["call.classify"]["entity_key"] == str(call_id)
    assert by_action["incident.create"]["actor_id"] == operator_id
    assert by_action["assignment.status"]["details"]["status"] == {
        "from": "pending",
        "to": "dispatched",
    }
    read = by_action["caller.history.read"]
    assert read["actor_id"] == user_id(session_factory, "maria")
    secret = settings.token_secret.get_secret_value()
    assert read["entity_key"] == pseudonym(normalise("081234567890").key, secret)
    assert "81234567890" not in str(entries)  # the trail names callers by pseudonym only
    # Newest first, and filters narrow it.
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    users_only = trail(client, admin, action="user.")
    assert {e["action"] for e in users_only} == {"user.create", "user.update"}
    calls_only = trail(client, admin, entity="call", entity_key=str(call_id))
    assert [e["action"] for e in calls_only] == ["call.classify"]
    of_caller = trail(client, admin, caller="+6281234567890")
    assert [e["action"] for e in of_caller] == ["caller.history.read"]
    page = client.get("/api/v1/audit", params={"limit": 2}, headers=admin).json()
    assert len(page["entries"]) == 2
    assert page["next_until"] == page["entries"][-1]["at"]


def test_only_admins_read_the_trail(client: TestClient, login: LoginFn) -> None:
    assert client.get("/api/v1/audit").status_code == 401
    for role in (Role.operator, Role.supervisor):
        assert client.get("/api/v1/audit", headers=login(role)).status_code == 403
    assert (
        client.get("/api/v1/audit", params={"limit": 0}, headers=login(Role.admin)).status_code
        == 422
    )


def test_the_top_callers_statistic_is_audited_and_the_others_are_not(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    supervisor = login(Role.supervisor, username="sari")
    span = {"from": "2025-01-01", "to": "2025-12-31"}
    for path in ("summary", "answer-times", "timeseries", "operators", "regions", "callers"):
        assert client.get(f"/api/v1/stats/{path}", params=span, headers=supervisor).is_success
    assert client.get(
        "/api/v1/reports/monthly", params={"month": "2025-01"}, headers=supervisor
    ).is_success

    sari = user_id(session_factory, "sari")
    entries = [e for e in trail(client, login(Role.admin)) if e["actor_id"] == sari]
    assert [e["action"] for e in entries] == ["callers.top.read"]
    assert entries[0]["details"]["query"] == span
