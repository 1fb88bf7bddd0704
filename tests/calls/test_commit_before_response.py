"""A write is answered only after its commit: a failed commit is never reported as success."""

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session, sessionmaker

from callcenter.app import create_app
from callcenter.models import Call
from callcenter.settings import Settings
from tests.builders import make_call
from tests.conftest import LoginFn


class CommitRefused(Exception):
    pass


@contextmanager
def commits_refused() -> Iterator[None]:
    """Every commit, on any engine, fails, as a database outage would."""

    def refuse(_connection: Connection) -> None:
        raise CommitRefused("the database refused the commit")

    event.listen(Engine, "commit", refuse)
    try:
        yield
    finally:
        event.remove(Engine, "commit", refuse)


def test_a_failed_commit_is_a_500_not_a_200(
    settings: Settings, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        call_id = make_call(session).id
    headers = login()
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as client,
        commits_refused(),
    ):
        response = client.put(
            f"/api/v1/calls/{call_id}/classification",
            json={"classification": "prank"},
            headers=headers,
        )
    assert response.status_code == 500
    with session_factory() as session:
        assert session.get_one(Call, call_id).classification is None
