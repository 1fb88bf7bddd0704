"""A statistics reader is checked (active, not revoked, supervisor) at most once a bound, and a
deactivated supervisor is refused once it has passed (stats.admitted)."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Role, User
from tests.conftest import LoginFn

SUMMARY = "/api/v1/stats/summary?from=2025-01-01&to=2025-12-31"


def test_readers_are_checked_once_a_bound_and_a_deactivated_one_is_refused_after_it(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    app: Any = client.app
    app.state.admitted_readers.seconds = 0.5
    checks: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM users" in statement:
            checks.append(statement)

    supervisor = login(Role.supervisor, username="sari")
    event.listen(app.state.engine, "before_cursor_execute", count)

    for _ in range(3):
        assert client.get(SUMMARY, headers=supervisor).status_code == 200
    assert len(checks) == 1  # admitted once for the three reads

    with session_factory.begin() as session:
        session.execute(update(User).where(User.username == "sari").values(active=False))
    time.sleep(0.6)  # the bound passes
    refused = client.get(SUMMARY, headers=supervisor)
    assert refused.status_code == 401
    assert len(checks) == 2
