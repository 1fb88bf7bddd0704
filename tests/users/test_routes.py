import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Role, User
from tests.builders import PASSWORD, PRODUCTION_HASH, make_user
from tests.conftest import LoginFn

NEW_USER = {
    "username": "yohanes",
    "password": "a long enough password",
    "role": "operator",
    "display_name": "Yohanes",
    "queue_member_name": "Operator Yohanes",
}


def _token(client: TestClient, username: str, password: str) -> int:
    return client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    ).status_code


def test_admin_creates_a_user_who_can_then_log_in(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    response = client.post("/api/v1/users", json=NEW_USER, headers=login(Role.admin))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["username"], body["role"], body["active"]) == ("yohanes", "operator", True)
    assert body["queue_member_name"] == "Operator Yohanes"
    assert "password" not in body
    assert "password_hash" not in body
    assert _token(client, "yohanes", NEW_USER["password"]) == 200
    with session_factory() as session:
        stored = session.scalars(select(User).where(User.username == "yohanes")).one()
        assert stored.password_hash.startswith(PRODUCTION_HASH)


def test_duplicate_or_weak_new_users_are_refused_and_nothing_is_stored(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    admin = login(Role.admin, username="boss")
    assert client.post("/api/v1/users", json=NEW_USER, headers=admin).status_code == 201
    assert client.post("/api/v1/users", json=NEW_USER, headers=admin).status_code == 409
    weak = client.post(
        "/api/v1/users", json=NEW_USER | {"username": "x", "password": "short"}, headers=admin
    )
    assert weak.status_code == 422
    assert "at least 8" in weak.json()["detail"]
    bad_role = client.post(
        "/api/v1/users", json=NEW_USER | {"username": "y", "role": "root"}, headers=admin
    )
    assert bad_role.status_code == 422
    assert "'operator', 'supervisor' or 'admin'" in bad_role.json()["detail"]
    assert "a long enough password" not in bad_role.text  # the input is never echoed
    with session_factory() as session:
        assert sorted(session.scalars(select(User.username))) == ["boss", "yohanes"]


@pytest.mark.parametrize("role", [Role.operator, Role.supervisor])
def test_non_admins_get_403(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session], role: Role
) -> None:
    with session_factory.begin() as session:
        other = make_user(session).id
    headers = login(role)
    assert client.post("/api/v1/users", json=NEW_USER, headers=headers).status_code == 403
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    patch = client.patch(f"/api/v1/users/{other}", json={"role": "admin"}, headers=headers)
    assert patch.status_code == 403
    assert "admin role" in patch.json()["detail"]


def test_no_token_is_401(client: TestClient) -> None:
    assert client.post("/api/v1/users", json=NEW_USER).status_code == 401
    assert client.get("/api/v1/users/me").status_code == 401
    assert client.patch("/api/v1/users/1", json={"active": False}).status_code == 401


def test_me_for_anyone_logged_in(client: TestClient, login: LoginFn) -> None:
    response = client.get("/api/v1/users/me", headers=login(Role.operator, username="andi"))
    assert response.status_code == 200
    assert (response.json()["username"], response.json()["role"]) == ("andi", "operator")


def test_admin_changes_role_disables_and_reenables(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    admin = login(Role.admin)
    operator = login(Role.operator, username="maria")
    with session_factory() as session:
        maria = session.scalars(select(User).where(User.username == "maria")).one().id

    promoted = client.patch(f"/api/v1/users/{maria}", json={"role": "supervisor"}, headers=admin)
    assert promoted.json()["role"] == "supervisor"
    disabled = client.patch(f"/api/v1/users/{maria}", json={"active": False}, headers=admin)
    assert disabled.json()["active"] is False
    assert client.get("/api/v1/users/me", headers=operator).status_code == 401
    assert _token(client, "maria", PASSWORD) == 401
    enabled = client.patch(f"/api/v1/users/{maria}", json={"active": True}, headers=admin)
    assert enabled.json()["active"] is True
    # Tokens issued before the role change and the deactivation stay revoked; a new one works.
    assert client.get("/api/v1/users/me", headers=operator).status_code == 401
    token = client.post("/api/v1/auth/token", data={"username": "maria", "password": PASSWORD})
    again = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert client.get("/api/v1/users/me", headers=again).json()["role"] == "supervisor"
    listed = client.get("/api/v1/users", headers=admin).json()
    assert "maria" in [u["username"] for u in listed]


def test_the_last_admin_cannot_be_demoted_or_disabled(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    admin = login(Role.admin, username="root")
    me = client.get("/api/v1/users/me", headers=admin).json()["id"]
    for change in ({"role": "operator"}, {"active": False}):
        response = client.patch(f"/api/v1/users/{me}", json=change, headers=admin)
        assert response.status_code == 409
        assert "last active admin" in response.json()["detail"]
    with session_factory() as session:
        root = session.get_one(User, me)
        assert (root.role, root.active) == (Role.admin, True)


def test_unknown_user_is_404_and_unknown_fields_422(client: TestClient, login: LoginFn) -> None:
    admin = login(Role.admin)
    assert (
        client.patch("/api/v1/users/99999", json={"active": False}, headers=admin).status_code
        == 404
    )
    response = client.patch("/api/v1/users/1", json={"password_hash": "x"}, headers=admin)
    assert response.status_code == 422
