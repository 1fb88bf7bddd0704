"""The live stream ends when its user may no longer watch, and its token never reaches a log
line (issue 14, items 6 and 7), over real HTTP with uvicorn's own access log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from callcenter.app import create_app
from callcenter.calls import live_routes
from callcenter.models import Role
from callcenter.settings import Settings
from callcenter.users.security import issue_token
from tests.builders import PASSWORD, make_user
from tests.http_server import served


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("httpx"):
            return  # this test's own HTTP client naming the URL it asked for, not the server
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.access", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def server(settings: Settings, captured: Captured) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(settings)

    def capture() -> None:
        # uvicorn's logging set-up just replaced the handlers: capture what it writes from here.
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).addHandler(captured)

    with served(app, configured=capture, log_level="info", access_log=True) as base:
        yield app, base


def _login(base: str, username: str, password: str = PASSWORD) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _events_until_closed(base: str, token: str) -> list[str]:
    """The stream's lines until the server ends it (a read time-out fails the test)."""
    with (
        httpx.Client(timeout=httpx.Timeout(10.0)) as client,
        client.stream("GET", f"{base}/api/v1/live", params={"access_token": token}) as stream,
    ):
        assert stream.status_code == 200
        return list(stream.iter_lines())


def test_a_deactivated_user_stops_receiving_the_stream(
    server: tuple[FastAPI, str],
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_routes, "RECHECK_SECONDS", 0.3)
    _, base = server
    with session_factory.begin() as session:
        make_user(session, username="boss", role=Role.admin)
        operator_id = make_user(session, username="andi", role=Role.operator).id
    admin, operator = _login(base, "boss"), _login(base, "andi")

    def deactivate() -> None:
        patched = httpx.patch(
            f"{base}/api/v1/users/{operator_id}",
            json={"active": False},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert patched.status_code == 200

    timer = threading.Timer(0.5, deactivate)
    timer.start()
    lines = _events_until_closed(base, operator)
    timer.join()
    assert "event: unauthorized" in lines
    assert httpx.get(f"{base}/api/v1/live", params={"access_token": operator}).status_code == 401


def test_an_expired_token_stops_the_stream(
    server: tuple[FastAPI, str],
    settings: Settings,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_routes, "RECHECK_SECONDS", 0.3)
    _, base = server
    with session_factory.begin() as session:
        user_id = make_user(session, username="andi", role=Role.operator).id
    token = issue_token(
        user_id=user_id,
        secret=settings.token_secret.get_secret_value(),
        ttl=timedelta(seconds=3),
    )
    assert "event: unauthorized" in _events_until_closed(base, token)


def test_no_token_password_or_secret_reaches_a_log_line(
    server: tuple[FastAPI, str],
    settings: Settings,
    session_factory: sessionmaker[Session],
    captured: Captured,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live_routes, "RECHECK_SECONDS", 0.3)
    _, base = server
    with session_factory.begin() as session:
        user_id = make_user(session, username="andi", role=Role.operator).id
    wrong = "wrong-but-secret-password"
    assert (
        httpx.post(
            f"{base}/api/v1/auth/token", data={"username": "andi", "password": wrong}
        ).status_code
        == 401
    )
    token = _login(base, "andi")
    assert httpx.get(
        f"{base}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
    ).is_success
    short = issue_token(
        user_id=user_id, secret=settings.token_secret.get_secret_value(), ttl=timedelta(seconds=3)
    )
    _events_until_closed(base, short)
    assert httpx.get(f"{base}/api/v1/live?access_token={token}x").status_code == 401

    lines = "\n".join(captured.lines)
    assert "/api/v1/live?access_token=[redacted]" in lines  # the access log did write it
    for secret in (token, short, PASSWORD, wrong, settings.token_secret.get_secret_value()):
        assert secret not in lines
        assert secret[:40] not in lines
