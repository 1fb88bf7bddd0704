"""The webhook channel against a real HTTP server: signature, retries, one delivery per key."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, AssignmentChange
from callcenter.notify.models import (
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    NotificationKind,
)
from callcenter.notify.worker import Worker
from callcenter.settings import Settings
from tests.notify.conftest import (
    Clock,
    HttpReceiver,
    MakeIncident,
    contacts,
    webhook,
    with_notify,
)


def _notifications(factory: sessionmaker[Session]) -> list[Notification]:
    with factory() as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_an_assignment_reaches_the_agency_signed_and_is_then_dispatched(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    webhook_key: str,
    clock: Clock,
) -> None:
    settings = with_notify(settings, agencies={"damkar_ttu": contacts(webhook(receiver.url))})
    incident_id = make_incident("damkar_ttu", summary="rumah terbakar, satu orang di dalam")
    outbox = _notifications(session_factory)
    assert [n.key for n in outbox] == [f"a{outbox[0].assignment_id}-assigned"]

    assert Worker(session_factory, settings, clock=clock).run_once() == 1

    [request] = receiver.received
    stamp = request.headers["X-Siaga112-Timestamp"]
    expected = hmac.new(
        webhook_key.encode(), stamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert request.headers["X-Siaga112-Signature"] == f"v1={expected}"
    assert request.headers["Idempotency-Key"] == outbox[0].key
    document = request.json()
    assert document["id"] == outbox[0].key
    assert document["data"]["incident_id"] == incident_id
    assert document["data"]["district"] == "Kota Kefamenanu"
    assert document["data"]["caller_number"] == "+6281234567890"
    assert "KEBAKARAN" in document["text"]
    assert f"Balas OK {incident_id}" in document["text"]
    assert document["ack_url"].startswith("http://112.test/ack/")
    with session_factory() as session:
        assignment = session.scalars(select(Assignment)).one()
        assert assignment.status is FollowUp.dispatched
        step = session.scalars(
            select(AssignmentChange).where(AssignmentChange.new_status == FollowUp.dispatched)
        ).one()
        assert (step.changed_by_id, step.via) == (None, "notify")
        assert step.actor == f"webhook:{receiver.url}"


def test_retries_after_500_and_a_timeout_carry_one_key_and_stop_once_delivered(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    webhook_key: str,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = with_notify(settings, agencies={"damkar_ttu": contacts(webhook(receiver.url))})
    make_incident("damkar_ttu")
    receiver.script = [500, "hang"]
    worker = Worker(session_factory, settings, clock=clock)

    assert worker.run_once() == 1  # 500
    assert worker.run_once() == 0  # backing off: nothing due yet
    clock.advance(seconds=10)
    assert worker.run_once() == 1  # no answer within the timeout
    clock.advance(seconds=19)
    assert worker.run_once() == 0
    clock.advance(seconds=1)
    assert worker.run_once() == 1  # 200
    clock.advance(minutes=5)  # later rounds (still within the agency's time) send nothing
    worker.run_once()

    assert len(receiver.received) == 3
    assert len({r.headers["Idempotency-Key"] for r in receiver.received}) == 1
    assert len({r.json()["id"] for r in receiver.received}) == 1
    [notification] = _notifications(session_factory)
    assert notification.status is DeliveryStatus.sent
    with session_factory() as session:
        attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert [a.ok for a in attempts] == [False, False, True]
    assert attempts[0].detail == "HTTP 500"
    assert attempts[1].detail.startswith("no answer within")
    assert webhook_key not in " ".join(a.detail for a in attempts)
    assert "HTTP 500" in caplog.text
    assert webhook_key not in caplog.text


def test_a_refused_webhook_falls_back_to_the_next_channel_at_once(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    webhook_key: str,
    clock: Clock,
) -> None:
    second = receiver.url.replace("/hook", "/second")
    settings = with_notify(
        settings,
        agencies={"damkar_ttu": contacts(webhook(receiver.url), webhook(second))},
    )
    make_incident("damkar_ttu")
    receiver.script = [404]
    worker = Worker(session_factory, settings, clock=clock)
    worker.run_once()
    worker.run_once()
    assert [r.path for r in receiver.received] == ["/hook", "/second"]
    [notification] = _notifications(session_factory)
    assert notification.status is DeliveryStatus.sent
    assert notification.sent_via == f"webhook:{second}"


def test_a_missing_webhook_key_is_an_attempt_that_failed_not_a_send_without_signature(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    clock: Clock,
) -> None:
    settings = with_notify(settings, agencies={"damkar_ttu": contacts(webhook(receiver.url))})
    make_incident("damkar_ttu")
    Worker(session_factory, settings, clock=clock).run_once()
    assert receiver.received == []
    [notification] = _notifications(session_factory)
    assert notification.status is DeliveryStatus.pending
    assert "SIAGA_TEST_WEBHOOK_KEY is not set" in (notification.last_error or "")


def test_an_agency_without_channels_waits_with_one_attempt_recorded_not_one_per_round(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    clock: Clock,
) -> None:
    settings = with_notify(settings)
    make_incident("damkar_ttu")
    worker = Worker(session_factory, settings, clock=clock)
    for _ in range(4):
        worker.run_once()
        clock.advance(seconds=601)
    with session_factory() as session:
        attempts = session.scalars(select(DeliveryAttempt)).all()
        notification = session.scalars(
            select(Notification).where(Notification.kind == NotificationKind.assigned)
        ).one()
    assert [a.detail for a in attempts if a.notification_id == notification.id] == [
        "no channel configured for the agency of damkar_ttu"
    ]
    assert notification.status is DeliveryStatus.pending


def test_two_workers_at_once_send_each_notification_once(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    webhook_key: str,
) -> None:
    settings = with_notify(settings, agencies={"damkar_ttu": contacts(webhook(receiver.url))})
    for _ in range(12):
        make_incident("damkar_ttu")
    workers = [Worker(session_factory, settings, batch=3) for _ in range(2)]
    barrier = threading.Barrier(2)

    def drain(worker: Worker) -> None:
        barrier.wait()
        for _ in range(10):
            worker.run_once()

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    keys = [r.headers["Idempotency-Key"] for r in receiver.received]
    assert len(keys) == 12
    assert len(set(keys)) == 12
    assert {n.status for n in _notifications(session_factory)} == {DeliveryStatus.sent}
