"""E-mail to a real local SMTP server (aiosmtpd), and falling back to it from a dead webhook."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.notify.config import Channel, SmtpSettings
from callcenter.notify.models import DeliveryAttempt, DeliveryStatus, Notification
from callcenter.notify.worker import Worker
from callcenter.settings import Settings
from tests.notify.conftest import Clock, MakeIncident, contacts, webhook, with_notify


class Inbox:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp_port() -> int:
    return _free_port()


@pytest.fixture
def smtp_server(smtp_port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield inbox
    controller.stop()


def _email(to: str) -> Channel:
    return Channel(kind="email", to=to)


def test_the_agency_gets_an_indonesian_email_whose_message_id_is_the_key(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    smtp_server: Inbox,
    smtp_port: int,
    clock: Clock,
) -> None:
    settings = with_notify(
        settings,
        smtp=SmtpSettings(port=smtp_port, sender="siaga112@ttu.test"),
        agencies={"rsud_kefa": contacts(_email("igd@rsud.test"))},
    )
    incident_id = make_incident("rsud_kefa", category="medical", summary="ibu hamil pendarahan")
    Worker(session_factory, settings, clock=clock).run_once()

    [mail] = smtp_server.mails
    assert smtp_server.recipients == [["igd@rsud.test"]]
    with session_factory() as session:
        key = session.scalars(select(Notification.key)).one()
    assert mail["Message-ID"] == f"<{key}@ttu.test>"
    assert mail["Subject"] == (
        f"[112] Penugasan kejadian {incident_id}: medis, "
        "Kec. Kota Kefamenanu, Desa Benpasi, belakang pasar"
    )
    body = mail.get_content().replace("\r\n", "\n")
    assert "ibu hamil pendarahan" in body
    assert "Penelepon: +6281234567890" in body
    assert "Konfirmasi penugasan ini (tanpa akun):\nhttp://112.test/ack/" in body


def test_a_dead_webhook_falls_back_to_email_and_an_smtp_outage_is_retried(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    smtp_port: int,
    clock: Clock,
    webhook_key: str,
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}/hook"
    settings = with_notify(
        settings,
        attempts_per_channel=2,
        smtp=SmtpSettings(port=smtp_port, timeout_seconds=2),
        agencies={"polres_ttu": contacts(webhook(dead), _email("spkt@polres.test"))},
    )
    make_incident("polres_ttu", category="crime")
    worker = Worker(session_factory, settings, clock=clock)
    worker.run_once()  # webhook refused
    clock.advance(seconds=10)
    worker.run_once()  # webhook refused again: next channel
    worker.run_once()  # SMTP down too
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        clock.advance(seconds=10)
        worker.run_once()
    finally:
        controller.stop()

    assert len(inbox.mails) == 1
    with session_factory() as session:
        notification = session.scalars(select(Notification)).one()
        attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert notification.status is DeliveryStatus.sent
    assert [(a.channel.split(":")[0], a.ok) for a in attempts] == [
        ("webhook", False),
        ("webhook", False),
        ("email", False),
        ("email", True),
    ]
    assert attempts[2].detail.startswith("SMTP server unreachable")
