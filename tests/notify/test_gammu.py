"""SMS through a real gammu-smsd (FILES backend, dummy phone driver): out and replies back in.

The Debian package gammu-smsd must be installed (.ci/run installs it); the test fails, never
skips, without it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.incidents.followup import FollowUp
from callcenter.incidents.models import Assignment, AssignmentChange
from callcenter.notify import gsm7
from callcenter.notify.channels.gammu import GammuSender
from callcenter.notify.config import Channel, GammuSettings
from callcenter.notify.models import DeliveryAttempt, DeliveryStatus, Notification, SmsReply
from callcenter.notify.worker import Worker, render
from callcenter.settings import Settings
from tests.notify.conftest import (
    Clock,
    HttpReceiver,
    MakeIncident,
    contacts,
    webhook,
    with_notify,
)

AGENCY_NUMBER = "+6281100000001"


@dataclass
class Smsd:
    root: Path
    spool: GammuSettings
    phone: Path

    def receive(self, sender: str, text: str, n: int) -> None:
        """A text arriving at the modem: the dummy phone's inbox folder, as Gammu stores it."""
        hex_text = "".join(f"{ord(c):04X}" for c in text)
        (self.phone / "sms" / "1" / str(n)).write_text(
            "[SMSBackup000]\n"
            'SMSC = "+6281100000000"\nState = UnRead\n'
            f'Number = "{sender}"\nCoding = Default\nFolder = 1\n'
            f"Sent = 20261201T0{n}0000\nText00 = {hex_text}\n"
        )


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "gammu-smsd did not get there in time"
        time.sleep(0.2)


@pytest.fixture
def smsd(tmp_path: Path) -> Iterator[Smsd]:
    binary = shutil.which("gammu-smsd")
    assert binary, "gammu-smsd is not installed: apt-get install gammu-smsd (see .ci/run)"
    root = tmp_path / "gammu"
    folders = {name: root / name for name in ("inbox", "outbox", "sent", "error", "processed")}
    for folder in [*folders.values(), root / "phone"]:
        folder.mkdir(parents=True)
    config = root / "smsdrc"
    config.write_text(
        f"[gammu]\ndevice = {root / 'phone'}\nmodel = dummy\nconnection = none\n\n"
        "[smsd]\nservice = files\n"
        f"inboxpath = {folders['inbox']}/\noutboxpath = {folders['outbox']}/\n"
        f"sentsmspath = {folders['sent']}/\nerrorsmspath = {folders['error']}/\n"
        "inboxformat = unicode\noutboxformat = unicode\ntransmitformat = auto\n"
        "checksecurity = 0\ncheckbattery = 0\ncheckSignal = 0\ncommtimeout = 1\n"
        "receivefrequency = 1\nstatusfrequency = 0\nloopsleep = 1\n"
        f"logfile = {root / 'smsd.log'}\ndebuglevel = 1\n"
    )
    process = subprocess.Popen([binary, "-c", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (root / "phone" / "sms" / "1").is_dir())
        yield Smsd(
            root=root,
            spool=GammuSettings(**{name: f"{path}/" for name, path in folders.items()}),
            phone=root / "phone",
        )
    finally:
        process.terminate()
        process.wait(timeout=20)


def _sms(number: str) -> Channel:
    return Channel(kind="sms_gammu", to=number)


def test_an_assignment_goes_out_through_the_modem_in_parts_of_160_at_most(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    smsd: Smsd,
    clock: Clock,
) -> None:
    settings = with_notify(
        settings, gammu=smsd.spool, agencies={"damkar_ttu": contacts(_sms(AGENCY_NUMBER))}
    )
    incident_id = make_incident(
        "damkar_ttu", summary="Rumah panggung terbakar; api menjalar ke dapur tetangga"
    )
    worker = Worker(session_factory, settings, clock=clock)
    worker.run_once()

    sent = Path(smsd.spool.sent)
    wait_for(
        lambda: len(list(sent.glob("OUT*"))) >= 2 and not list(Path(smsd.spool.outbox).glob("OUT*"))
    )
    files = sorted(sent.glob("OUT*"))
    texts = [f.read_bytes().decode("utf-16") for f in files]
    assert all(f.name.startswith(f"OUTA_{AGENCY_NUMBER}_n") for f in files)
    assert all(gsm7.septets(t) <= 160 for t in texts)
    assert texts[0].startswith(f"1/{len(texts)} 112 TTU: aduan darurat KEBAKARAN, kejadian ")
    whole = " ".join(t.split(" ", 1)[1] for t in texts)
    assert f"Balas OK {incident_id} = diterima, SELESAI {incident_id}" in whole
    assert "http://112.test/ack/" in whole
    assert "Transmitted" in (smsd.root / "smsd.log").read_text()

    # The same notification spooled again (a worker killed before it recorded the send)
    # finds its parts in the sent folder: the modem sends nothing twice.

    with session_factory() as session:
        notification = session.scalars(select(Notification)).one()
        message = render(notification, "damkar_ttu", settings)
    assert GammuSender(smsd.spool)(message, _sms(AGENCY_NUMBER)).startswith("0 of ")
    assert list(Path(smsd.spool.outbox).glob("OUT*")) == []


def test_replies_read_from_the_modem_acknowledge_then_resolve(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    smsd: Smsd,
    clock: Clock,
) -> None:
    settings = with_notify(
        settings, gammu=smsd.spool, agencies={"damkar_ttu": contacts(_sms(AGENCY_NUMBER))}
    )
    incident_id = make_incident("damkar_ttu")
    worker = Worker(session_factory, settings, clock=clock)
    worker.run_once()

    inbox = Path(smsd.spool.inbox)
    smsd.receive("+6289999999999", f"OK {incident_id}", 1)  # a number no agency has
    smsd.receive(AGENCY_NUMBER, f"ok {incident_id} siap meluncur", 2)
    wait_for(lambda: len(list(inbox.glob("IN*"))) == 2)
    worker.run_once()
    with session_factory() as session:
        assignment = session.scalars(select(Assignment)).one()
        assert assignment.status is FollowUp.acknowledged
        replies = {r.sender: r.outcome for r in session.scalars(select(SmsReply))}
        step = session.scalars(
            select(AssignmentChange).where(AssignmentChange.new_status == FollowUp.acknowledged)
        ).one()
    assert (step.actor, step.via, step.changed_by_id) == (AGENCY_NUMBER, "sms", None)
    assert replies == {
        "+6289999999999": "ignored: number not configured for any agency",
        AGENCY_NUMBER: "acknowledged",
    }
    assert list(inbox.glob("IN*")) == []
    assert len(list(Path(smsd.spool.processed).glob("IN*"))) == 2

    smsd.receive(AGENCY_NUMBER, f"SELESAI {incident_id}", 3)
    wait_for(lambda: len(list(inbox.glob("IN*"))) == 1)
    worker.run_once()
    worker.run_once()
    with session_factory() as session:
        assert session.scalars(select(Assignment.status)).one() is FollowUp.resolved
        assert len(session.scalars(select(SmsReply)).all()) == 3


def test_a_part_the_modem_could_not_send_reopens_the_notification_on_the_next_channel(
    session_factory: sessionmaker[Session],
    settings: Settings,
    make_incident: MakeIncident,
    receiver: HttpReceiver,
    webhook_key: str,
    tmp_path: Path,
    clock: Clock,
) -> None:
    # No gammu-smsd here: its part in this is moving a file it could not send from the outbox
    # to its error folder, which the test does in its place.
    spool = GammuSettings(
        **{
            name: f"{tmp_path / name}/"
            for name in ("inbox", "outbox", "sent", "error", "processed")
        }
    )
    for folder in ("outbox", "error"):
        (tmp_path / folder).mkdir()
    settings = with_notify(
        settings,
        gammu=spool,
        agencies={"damkar_ttu": contacts(_sms(AGENCY_NUMBER), webhook(receiver.url))},
    )
    make_incident("damkar_ttu")
    worker = Worker(session_factory, settings, clock=clock)
    worker.run_once()
    spooled = sorted((tmp_path / "outbox").glob("OUT*"))[0]  # part 1 failed on the modem
    spooled.rename(tmp_path / "error" / spooled.name)

    worker.run_once()

    assert len(receiver.received) == 1
    with session_factory() as session:
        notification = session.scalars(select(Notification)).one()
        attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert notification.status is DeliveryStatus.sent
    assert notification.sent_via == f"webhook:{receiver.url}"
    assert [(a.channel.split(":")[0], a.ok) for a in attempts] == [
        ("sms_gammu", True),
        ("sms_gammu", False),
        ("webhook", True),
    ]
    assert "modem could not send part" in attempts[1].detail
    assert list((tmp_path / "error").iterdir()) == []
