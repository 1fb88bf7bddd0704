"""Every error in the documented JSON shape, a 4xx for what a client got wrong, 503 when the
database is away (issue 14 item 8, issue 12 item 16)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from callcenter.app import create_app
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.migrate import upgrade
from callcenter.models import Role
from callcenter.settings import AmiSettings, FastAgiSettings, Settings
from tests.builders import PASSWORD, make_user
from tests.conftest import LoginFn, new_postgres_database
from tests.tcp_proxy import TcpProxy, free_port

HUGE = "99999999999999999999"  # past 64 bits
BIG = str(2**63)  # just past BIGINT


def assert_error(response: Any, status: int, error: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, str] = response.json()
    assert body["error"] == error
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/calls?offset={HUGE}"),
        ("GET", f"/api/v1/calls/{HUGE}"),
        ("GET", f"/api/v1/calls/{BIG}"),
        ("GET", f"/api/v1/users/{HUGE}"),
        ("GET", f"/api/v1/incidents/{BIG}"),
        ("GET", f"/api/v1/calls/{BIG}/incident"),
        ("POST", f"/api/v1/assignments/{BIG}/status"),
        ("POST", f"/api/v1/callbacks/{BIG}/attempts"),
        ("GET", "/api/v1/reports/monthly?month=0000-01"),
        ("GET", "/api/v1/reports/monthly?month=9999-12"),
        ("GET", "/api/v1/stats/timeseries?from=5053-01-02&to=5053-01-02"),
        ("GET", "/api/v1/stats/callers?from=9999-12-30&to=9999-12-31"),
        ("GET", "/api/v1/calls?from=0001-01-01T00:00:00%2B14:00"),
        ("GET", "/api/v1/calls?to=9999-12-31T23:59:59-12:00"),
    ],
)
def test_out_of_range_numbers_and_dates_are_422(
    client: TestClient, login: LoginFn, method: str, path: str
) -> None:
    headers = login(Role.admin)
    body = {"status": "dispatched"} if "status" in path else {"outcome": "reached"}
    response = client.request(method, path, headers=headers, json=body)
    assert_error(response, 422, "invalid_input")


def test_a_body_id_past_64_bits_and_unknown_fields_are_422(
    client: TestClient, login: LoginFn
) -> None:
    headers = login(Role.operator)
    for call_id in (int(BIG), int(HUGE)):
        response = client.post(
            "/api/v1/incidents", headers=headers, json={"call_id": call_id, "category": "fire"}
        )
        assert_error(response, 422, "invalid_input")
    response = client.post(
        "/api/v1/incidents",
        headers=headers,
        json={"call_id": 1, "category": "fire", "agencies": ["police"]},
    )
    body = assert_error(response, 422, "invalid_input")
    assert "agencies" in body["detail"]


def test_malformed_json_is_said_plainly(client: TestClient, login: LoginFn) -> None:
    response = client.post(
        "/api/v1/incidents",
        headers={**login(Role.operator), "Content-Type": "application/json"},
        content=b'{"call_id": 1,',
    )
    body = assert_error(response, 422, "invalid_input")
    assert "malformed JSON" in body["detail"]


def test_a_bad_if_match_is_not_echoed(client: TestClient, login: LoginFn) -> None:
    marker = "<script>secret-ish</script>"
    response = client.put(
        "/api/v1/calls/1/classification",
        headers={**login(Role.operator), "If-Match": marker},
        json={"classification": "prank"},
    )
    body = assert_error(response, 422, "invalid_input")
    assert marker not in response.text
    assert "if-match" in body["detail"].lower()


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")
    response = client.delete("/api/v1/calls")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"
    response = client.delete("/api/v1/users")  # two routes at this path: both methods
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


def test_an_unexpected_failure_is_500_in_the_same_shape(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug, with data: 081234567890")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    body = assert_error(response, 500, "internal_error")
    assert "081234567890" not in body["detail"]


@pytest.fixture
def postgres_behind_a_proxy(tmp_path: Path) -> Iterator[tuple[Settings, TcpProxy]]:
    with new_postgres_database("cc_api_down") as url:
        engine = make_engine(url)
        upgrade(engine)
        with make_sessionmaker(engine).begin() as session:
            make_user(session, role=Role.operator, username="ani")
        engine.dispose()
        parsed = make_url(url)
        proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        through = parsed.set(host="127.0.0.1", port=proxy.port)
        settings = Settings(
            environment="test",
            database_url=through.render_as_string(hide_password=False),
            data_dir=tmp_path / "data",
            token_secret=SecretStr("test-secret-" + "x" * 32),
            ami=AmiSettings(enabled=False),
            fastagi=FastAgiSettings(enabled=False),
        )
        proxy.start()
        try:
            yield settings, proxy
        finally:
            proxy.stop()


@pytest.mark.postgres
def test_postgresql_down_is_503_in_the_documented_shape(
    postgres_behind_a_proxy: tuple[Settings, TcpProxy],
) -> None:
    settings, proxy = postgres_behind_a_proxy
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "ani", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/calls", headers=headers).status_code == 200
        proxy.stop()  # PostgreSQL is gone: open connections cut, new ones refused
        response = client.get("/api/v1/calls", headers=headers)
        assert_error(response, 503, "service_unavailable")
        proxy.start()
        assert client.get("/api/v1/calls", headers=headers).status_code == 200


def test_the_api_starts_while_postgresql_is_away_and_answers_503(tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/away",
        data_dir=tmp_path / "data",
        token_secret=SecretStr("test-secret-" + "x" * 32),
        ami=AmiSettings(enabled=False),
        fastagi=FastAgiSettings(enabled=False),
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")
        response = client.post("/api/v1/auth/token", data={"username": "a", "password": "b"})
        assert_error(response, 503, "service_unavailable")


def test_nul_in_a_query_or_a_body_is_422(client: TestClient, login: LoginFn) -> None:
    """PostgreSQL refuses NUL in text: it was a 500 there (and stored as is on SQLite)."""
    headers = login(Role.admin)
    response = client.get("/api/v1/calls?operator=%00Andi", headers=headers)
    assert_error(response, 422, "invalid_input")
    response = client.post(
        "/api/v1/users",
        headers=headers,
        json={"username": "a\u0000b", "password": "long-enough-1", "role": "operator"},
    )
    assert_error(response, 422, "invalid_input")
    # The text "\u0000" or "%00" is not a NUL: taken as it is.
    response = client.post(
        "/api/v1/users",
        headers=headers,
        json={"username": "a%00\\u0000b", "password": "long-enough-1", "role": "operator"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["username"] == "a%00\\u0000b"
