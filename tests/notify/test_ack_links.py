"""The acknowledgement link: a one-page form without an account; forged or expired refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.app import create_app
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, AssignmentChange
from callcenter.models import Role
from callcenter.notify import links
from callcenter.notify.models import Notification
from callcenter.notify.worker import ack_link
from callcenter.settings import Settings
from tests.builders import PASSWORD, make_user
from tests.notify.conftest import MakeIncident, with_notify

SECRET = b"link-secret-for-tests-0123456789"


@pytest.fixture
def notify_settings(settings: Settings) -> Settings:
    return with_notify(settings)


@pytest.fixture
def app_client(notify_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(notify_settings)) as client:
        yield client


def _token(factory: sessionmaker[Session], settings: Settings) -> str:
    with factory() as session:
        notification = session.scalars(select(Notification)).one()
    link = ack_link(notification, settings)
    assert link is not None
    assert link.startswith("http://112.test/ack/")
    return link.rsplit("/", 1)[1]


def _steps(factory: sessionmaker[Session]) -> list[tuple[str, str | None, str | None]]:
    with factory() as session:
        return [
            (c.new_status.value, c.actor, c.via)
            for c in session.scalars(select(AssignmentChange).order_by(AssignmentChange.id))
        ]


def test_the_form_acknowledges_then_resolves_and_operators_see_who_and_how(
    app_client: TestClient,
    session_factory: sessionmaker[Session],
    notify_settings: Settings,
    make_incident: MakeIncident,
) -> None:
    incident_id = make_incident("damkar_ttu", summary="gudang terbakar")
    token = _token(session_factory, notify_settings)

    page = app_client.get(f"/ack/{token}")
    assert page.status_code == 200
    assert "<html lang='id'>" in page.text
    assert f"Penugasan kejadian {incident_id}" in page.text
    assert "Damkar TTU" in page.text
    assert "gudang terbakar" in page.text
    assert "<script" not in page.text
    assert "Penugasan diterima" in page.text
    assert "Selesai ditangani" in page.text

    done = app_client.post(f"/ack/{token}", data={"action": "acknowledged", "name": "Budi"})
    assert done.status_code == 200
    assert "diterima" in done.text
    again = app_client.post(f"/ack/{token}", data={"action": "acknowledged", "name": "Budi"})
    assert again.status_code == 200
    assert _steps(session_factory) == [
        ("pending", None, None),
        ("dispatched", "Budi", "link"),
        ("acknowledged", "Budi", "link"),
    ]

    app_client.post(f"/ack/{token}", data={"action": "resolved", "name": "Budi"})
    with session_factory() as session:
        assert session.scalars(select(Assignment.status)).one() is FollowUp.resolved
    assert "Penugasan diterima" not in app_client.get(f"/ack/{token}").text

    with session_factory.begin() as session:
        username = make_user(session, role=Role.operator).username
    bearer = app_client.post(
        "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {bearer}"}
    incident = app_client.get(f"/api/v1/incidents/{incident_id}", headers=headers).json()
    history = incident["assignments"][0]["history"]
    assert [(h["new_status"], h["actor"], h["via"]) for h in history][-1] == (
        "resolved",
        "Budi",
        "link",
    )
    assert history[-1]["changed_by_id"] is None
    timeline = app_client.get(f"/api/v1/incidents/{incident_id}/timeline", headers=headers)
    events = [(e["event"], e["detail"]) for e in timeline.json()]
    assert ("assigned:queued", f"to agency, key a{incident['assignments'][0]['id']}-assigned") in (
        events
    )
    assert ("status:resolved", "Budi via link") in events


def test_a_forged_link_is_refused_and_changes_nothing(
    app_client: TestClient,
    session_factory: sessionmaker[Session],
    notify_settings: Settings,
    make_incident: MakeIncident,
) -> None:
    make_incident("damkar_ttu", "rsud_kefa")
    token = _token_of_first(session_factory, notify_settings)
    assignment_id, expiry, signature = token.split(".")
    forged = [
        f"{assignment_id}.{expiry}.{signature[:-2]}AA",  # signature altered
        f"{int(assignment_id) + 1}.{expiry}.{signature}",  # another assignment, same signature
        f"{assignment_id}.{links._base36(int(expiry, 36) + 86400)}.{signature}",  # longer life
        links.sign(int(assignment_id), expires=int(time.time()) + 3600, secret=b"guessed"),
        "not-a-token",
    ]
    for token in forged:
        page = app_client.get(f"/ack/{token}")
        assert page.status_code == 403, token
        assert "Tautan ini tidak sah" in page.text
        post = app_client.post(f"/ack/{token}", data={"action": "resolved", "name": "x"})
        assert post.status_code == 403
    assert [s for s in _steps(session_factory) if s[0] != "pending"] == []


def _token_of_first(factory: sessionmaker[Session], settings: Settings) -> str:
    with factory() as session:
        notification = session.scalars(select(Notification).order_by(Notification.id)).first()
    assert notification is not None
    link = ack_link(notification, settings)
    assert link is not None
    return link.rsplit("/", 1)[1]


def test_an_expired_link_is_refused_and_changes_nothing(
    app_client: TestClient,
    session_factory: sessionmaker[Session],
    make_incident: MakeIncident,
) -> None:
    make_incident("damkar_ttu")
    with session_factory() as session:
        assignment_id = session.scalars(select(Assignment.id)).one()
    expired = links.sign(assignment_id, expires=int(time.time()) - 1, secret=SECRET)
    page = app_client.get(f"/ack/{expired}")
    assert page.status_code == 403
    assert "sudah kedaluwarsa" in page.text
    post = app_client.post(f"/ack/{expired}", data={"action": "acknowledged", "name": "x"})
    assert post.status_code == 403
    assert _steps(session_factory) == [("pending", None, None)]
    fresh = links.sign(assignment_id, expires=int(time.time()) + 60, secret=SECRET)
    assert app_client.get(f"/ack/{fresh}").status_code == 200


def test_an_assignment_closed_as_not_followed_up_cannot_be_acknowledged(
    app_client: TestClient,
    session_factory: sessionmaker[Session],
    make_incident: MakeIncident,
) -> None:
    make_incident("damkar_ttu")
    with session_factory.begin() as session:
        assignment = session.scalars(select(Assignment)).one()
        assignment.status = FollowUp.not_followed_up
        assignment_id = assignment.id
    token = links.sign(assignment_id, expires=int(time.time()) + 60, secret=SECRET)
    post = app_client.post(f"/ack/{token}", data={"action": "acknowledged", "name": "x"})
    assert post.status_code == 409
    bad = app_client.post(f"/ack/{token}", data={"action": "sideways", "name": "x"})
    assert bad.status_code == 422
