"""Silence is noticed: reminder, escalation to second contacts and the supervisor, daily digest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.app import create_app
from callcenter.db import utcnow
from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment
from callcenter.models import Role
from callcenter.notify import ack
from callcenter.notify.worker import Worker
from callcenter.settings import Settings
from tests.builders import PASSWORD, make_user
from tests.notify.conftest import (
    Clock,
    HttpReceiver,
    MakeIncident,
    contacts,
    supervisor,
    webhook,
    with_notify,
)


@pytest.fixture
def escalating(settings: Settings, receiver: HttpReceiver, webhook_key: str) -> Settings:
    base = receiver.url.removesuffix("/hook")
    return with_notify(
        settings,
        agencies={
            "damkar_ttu": contacts(
                webhook(f"{base}/damkar"),
                second_contacts=[webhook(f"{base}/damkar-chief")],
                ack_minutes=10,
                ack_minutes_by_category={"fire": 5},
            ),
            "rsud_kefa": contacts(webhook(f"{base}/rsud")),
        },
        supervisor=supervisor(webhook(f"{base}/supervisor")),
    )


@pytest.fixture
def app_client(escalating: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(escalating)) as client:
        yield client


def _paths(receiver: HttpReceiver) -> list[tuple[str, str]]:
    return [(r.path, r.json()["type"]) for r in receiver.received]


def _headers(client: TestClient, factory: sessionmaker[Session], role: Role) -> dict[str, str]:
    with factory.begin() as session:
        username = make_user(session, role=role).username
    token = client.post(
        "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_silence_brings_a_reminder_then_escalation_each_once(
    app_client: TestClient,
    session_factory: sessionmaker[Session],
    escalating: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    clock: Clock,
) -> None:
    fire = make_incident("damkar_ttu", category="fire")
    other = make_incident("damkar_ttu", category="other")
    worker = Worker(session_factory, escalating, clock=clock)
    worker.run_once()
    assert _paths(receiver) == [("/damkar", "assigned"), ("/damkar", "assigned")]

    clock.advance(minutes=4)
    worker.run_once()
    assert len(receiver.received) == 2
    clock.advance(minutes=1, seconds=1)  # the fire's 5 minutes are up; "other" has 10
    worker.run_once()
    assert _paths(receiver)[2:] == [("/damkar", "reminder")]
    assert receiver.received[2].json()["data"]["incident_id"] == fire
    assert "PENGINGAT" in receiver.received[2].json()["text"]

    clock.advance(minutes=5)  # fire: 10 minutes, escalated; other: 10 minutes, reminded
    worker.run_once()
    worker.run_once()
    later = sorted(_paths(receiver)[3:])
    assert later == [
        ("/damkar", "reminder"),
        ("/damkar-chief", "escalation"),
        ("/supervisor", "escalation"),
    ]
    to_supervisor = next(r for r in receiver.received if r.path == "/supervisor").json()
    assert to_supervisor["data"]["incident_id"] == fire
    assert "Instansi: Damkar TTU" in to_supervisor["text"]
    assert to_supervisor["ack_url"] is None

    supervisor_headers = _headers(app_client, session_factory, Role.supervisor)
    board = app_client.get("/api/v1/notify/escalations", headers=supervisor_headers).json()
    assert [(e["incident_id"], e["agency_code"]) for e in board] == [(fire, "damkar_ttu")]
    operator_headers = _headers(app_client, session_factory, Role.operator)
    assert app_client.get("/api/v1/notify/escalations", headers=operator_headers).status_code == 403
    timeline = app_client.get(f"/api/v1/incidents/{fire}/timeline", headers=operator_headers)
    events = [e["event"] for e in timeline.json()]
    assert events.count("escalation:sent") == 2
    assert "reminder:sent" in events

    with session_factory.begin() as session:
        assignment_id = session.scalars(
            select(Assignment.id).where(Assignment.incident_id == fire)
        ).one()
        ack.acknowledge(
            session,
            assignment_id=assignment_id,
            target=FollowUp.acknowledged,
            actor="Kepala Damkar",
            via="link",
            now=utcnow(),
        )
    assert app_client.get("/api/v1/notify/escalations", headers=supervisor_headers).json() == []
    clock.advance(hours=2)
    worker.run_once()
    # The acknowledged fire gets nothing more; "other" is escalated now, once.
    assert sorted(_paths(receiver)[6:]) == [
        ("/damkar-chief", "escalation"),
        ("/supervisor", "escalation"),
    ]
    assert other in {r.json()["data"]["incident_id"] for r in receiver.received[6:]}


def test_what_is_still_open_at_the_digest_hour_goes_to_each_agency_and_the_supervisor_once(
    session_factory: sessionmaker[Session],
    escalating: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    clock: Clock,
) -> None:
    settings = escalating.model_copy(
        update={
            "notify": escalating.notify.model_copy(
                update={"daily_digest": True, "digest_at": time(20, 0), "ack_minutes": 10**6}
            )
        }
    )
    for contacts_ in settings.notify.agencies.values():
        contacts_.ack_minutes, contacts_.ack_minutes_by_category = 10**6, {}
    fire = make_incident("damkar_ttu", "rsud_kefa")
    resolved = make_incident("rsud_kefa", category="medical")
    with session_factory.begin() as session:
        assignment_id = session.scalars(
            select(Assignment.id).where(Assignment.incident_id == resolved)
        ).one()
        ack.acknowledge(
            session,
            assignment_id=assignment_id,
            target=FollowUp.resolved,
            actor="IGD",
            via="sms",
            now=utcnow(),
        )
    # The worker's clock at 19.00 local time tomorrow.
    local = utcnow().astimezone(settings.tz)
    seven_pm = datetime.combine(local.date() + timedelta(days=1), time(19), tzinfo=settings.tz)
    clock.offset = seven_pm - utcnow()
    worker = Worker(session_factory, settings, clock=clock)
    worker.run_once()
    assert {t for _, t in _paths(receiver)} == {"assigned"}

    clock.advance(hours=1, seconds=1)
    worker.run_once()
    worker.run_once()
    digests = {r.path: r.json() for r in receiver.received if r.json()["type"] == "digest"}
    assert set(digests) == {"/damkar", "/rsud", "/supervisor"}
    assert [i["incident_id"] for i in digests["/damkar"]["data"]["open"]] == [fire]
    assert [i["incident_id"] for i in digests["/rsud"]["data"]["open"]] == [fire]
    assert len(digests["/supervisor"]["data"]["open"]) == 2
    assert "rekap harian" in digests["/supervisor"]["text"]
    assert "Damkar TTU" in digests["/supervisor"]["text"]
    assert "1 penugasan belum selesai ditangani" in digests["/damkar"]["text"]

    clock.advance(hours=1)
    worker.run_once()
    assert sum(r.json()["type"] == "digest" for r in receiver.received) == 3
    clock.advance(days=1)
    worker.run_once()
    assert sum(r.json()["type"] == "digest" for r in receiver.received) == 6
