from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import LoginFailure, Role
from tests.builders import PASSWORD, make_user
from tests.conftest import LoginFn


def test_token_for_right_password(client: TestClient, login: LoginFn) -> None:
    headers = login(Role.admin)
    assert headers["Authorization"].startswith("Bearer ")


def test_wrong_password_is_401_and_counted(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        make_user(session, username="andi")
    response = client.post("/api/v1/auth/token", data={"username": "andi", "password": "nope"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    with session_factory() as session:
        assert session.scalars(select(LoginFailure.failures)).one() == 1


def test_repeated_failures_lock_the_user_even_with_the_right_password(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        make_user(session, username="maria")
    for _ in range(5):
        client.post("/api/v1/auth/token", data={"username": "maria", "password": "wrong"})
    response = client.post("/api/v1/auth/token", data={"username": "maria", "password": PASSWORD})
    assert response.status_code == 429
    assert "too many failed logins" in response.json()["detail"]
    assert 0 < int(response.headers["Retry-After"]) <= 300


def test_unknown_user_and_disabled_user_are_refused(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        make_user(session, username="gone", active=False)
    for username in ("nobody", "gone"):
        response = client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 401


def test_healthz_needs_no_token_and_readyz_reports_the_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok"}
