"""Logging in under attack: same answers for every name, no session while hashing, limits,
and tokens that can be revoked (issue 18 item 2, issue 12 item 17)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import wraps
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from callcenter.app import create_app
from callcenter.models import Role
from callcenter.settings import Settings
from callcenter.users import login as login_module
from callcenter.users import security
from tests.builders import PASSWORD, make_user
from tests.conftest import LoginFn

TOKEN = "/api/v1/auth/token"


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post(TOKEN, data={"username": username, "password": password})


def test_an_unknown_name_is_locked_out_exactly_like_an_existing_one(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        make_user(session, username="maria")
    answers = {}
    for username in ("maria", "nobody"):
        first = [_login(client, username, "wrong") for _ in range(5)]
        assert {r.status_code for r in first} == {401}
        assert len({r.json()["detail"] for r in first}) == 1
        answers[username] = _login(client, username, PASSWORD)
    known, unknown = answers["maria"], answers["nobody"]
    assert known.status_code == unknown.status_code == 429
    # The same answer but for the seconds left, which may straddle a second between the two.
    known_body, unknown_body = known.json(), unknown.json()
    assert abs(known_body.pop("retry_after") - unknown_body.pop("retry_after")) <= 1
    assert known_body == unknown_body
    assert known.json()["detail"] == "too many failed logins: try again later"
    assert abs(int(known.headers["Retry-After"]) - int(unknown.headers["Retry-After"])) <= 1
    assert 290 <= int(known.headers["Retry-After"]) <= 300


def test_every_name_costs_one_password_check_and_no_session_is_open_meanwhile(
    client: TestClient,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown name is checked against the dummy hash; the check holds no connection."""
    with session_factory.begin() as session:
        make_user(session, username="andi")
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    checks: list[tuple[str | None, int]] = []
    real = security.verify_password

    @wraps(real)
    def recording(password_hash: str | None, password: str) -> bool:
        checks.append((password_hash, engine.pool.checkedout()))  # type: ignore[attr-defined]
        return real(password_hash, password)

    monkeypatch.setattr(login_module, "verify_password", recording)
    assert _login(client, "andi", "wrong").status_code == 401
    assert _login(client, "nobody", "wrong").status_code == 401
    assert _login(client, "andi", PASSWORD).status_code == 200
    assert [bool(h) for h, _ in checks] == [True, False, True]
    assert [open_connections for _, open_connections in checks] == [0, 0, 0]


@pytest.fixture
def strict_client(settings: Settings) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"login_max_failures_per_address": 3})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_one_address_is_limited_across_names(
    strict_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        make_user(session, username="andi")
    for name in ("a", "b", "c"):
        assert _login(strict_client, name, "wrong").status_code == 401
    refused = _login(strict_client, "andi", PASSWORD)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_log_out_revokes_the_token(client: TestClient, login: LoginFn) -> None:
    headers = login(Role.operator)
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    refused = client.get("/api/v1/users/me", headers=headers)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_a_role_change_or_deactivation_revokes_tokens(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    admin = login(Role.admin, username="boss")
    demoted = login(Role.supervisor, username="maria")
    disabled = login(Role.operator, username="andi")
    ids = {u["username"]: u["id"] for u in client.get("/api/v1/users", headers=admin).json()}
    patch = client.patch(f"/api/v1/users/{ids['maria']}", json={"role": "operator"}, headers=admin)
    assert patch.status_code == 200
    patch = client.patch(f"/api/v1/users/{ids['andi']}", json={"active": False}, headers=admin)
    assert patch.status_code == 200
    assert client.get("/api/v1/users/me", headers=demoted).status_code == 401
    # The classification hot path checks the same, in its own statement.
    tag = client.put(
        "/api/v1/calls/1/classification", json={"classification": "prank"}, headers=demoted
    )
    assert tag.status_code == 401
    assert client.get("/api/v1/users/me", headers=disabled).status_code == 401
    assert client.get("/api/v1/users/me", headers=admin).status_code == 200
