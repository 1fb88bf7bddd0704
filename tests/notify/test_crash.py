"""Nothing lost, nothing sent twice: real processes killed with SIGKILL around the send."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.incidents import agencies
from callcenter.notify.models import DeliveryAttempt, DeliveryStatus, Notification
from callcenter.notify.worker import Worker
from callcenter.settings import PROJECT_ROOT, Settings
from tests.notify.conftest import (
    WEBHOOK_ENV,
    WEBHOOK_KEY,
    Clock,
    HttpReceiver,
    MakeIncident,
    contacts,
    webhook,
    with_notify,
)

CALLCENTER = str(Path(sys.executable).parent / "callcenter")

# Makes an incident (its notification is written in the same transaction), commits, says so,
# then waits to be killed: the backend dies between the commit and any send.
COMMIT_THEN_HANG = textwrap.dedent(
    """
    import sys, time
    import callcenter.all_models
    from callcenter.db import make_engine, make_sessionmaker
    from callcenter.incidents import service
    from callcenter.models import Classification
    from callcenter.settings import get_settings
    from tests.builders import make_call, make_user

    settings = get_settings()
    factory = make_sessionmaker(make_engine(settings.resolved_database_url))
    with factory.begin() as session:
        user = make_user(session)
        call = make_call(session, classification=Classification.emergency)
        service.create_incident(
            session, settings=settings, user=user, call_id=call.id, category="fire",
            location=service.Location(), summary="",
            assign=[service.AgencyRequest("damkar_ttu", primary=True)],
        )
    print("committed", flush=True)
    time.sleep(600)
    """
)


def _config(tmp_path: Path, settings: Settings, hook_url: str, *, timeout: float) -> Path:
    path = tmp_path / "callcenter.toml"
    path.write_text(
        f'environment = "test"\ndatabase_url = "{settings.resolved_database_url}"\n'
        f'data_dir = "{tmp_path / "data"}"\ntoken_secret = "{"t" * 40}"\n'
        "[ami]\nenabled = false\n[fastagi]\nenabled = false\n"
        '[notify]\nlink_secret = "crash-test-link-secret"\nclaim_seconds = 30\n'
        "daily_digest = false\n"
        f"http_timeout_seconds = {timeout}\npoll_seconds = 0.2\n"
        "[notify.agencies.damkar_ttu]\n"
        f'channels = [{{ kind = "webhook", to = "{hook_url}", secret_env = "{WEBHOOK_ENV}" }}]\n'
    )
    return path


def _env(config: Path) -> dict[str, str]:
    return os.environ | {"CALLCENTER_CONFIG": str(config), WEBHOOK_ENV: WEBHOOK_KEY}


def _notify_once(config: Path) -> None:
    subprocess.run([CALLCENTER, "notify", "--once"], env=_env(config), check=True, cwd=PROJECT_ROOT)


def test_a_notification_committed_survives_the_backend_killed_before_sending(
    session_factory: sessionmaker[Session],
    settings: Settings,
    receiver: HttpReceiver,
    tmp_path: Path,
) -> None:
    with session_factory.begin() as session:
        agencies.seed(session, settings.agencies)
    config = _config(tmp_path, settings, receiver.url, timeout=5)
    backend = subprocess.Popen(
        [sys.executable, "-c", COMMIT_THEN_HANG],
        env=_env(config),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert backend.stdout is not None
        assert backend.stdout.readline().strip() == "committed"
    finally:
        backend.send_signal(signal.SIGKILL)
        backend.wait()
        if backend.stdout is not None:
            backend.stdout.close()
    assert backend.returncode == -signal.SIGKILL
    assert receiver.received == []

    _notify_once(config)
    _notify_once(config)

    assert len(receiver.received) == 1
    with session_factory() as session:
        notification = session.scalars(select(Notification)).one()
    assert notification.status is DeliveryStatus.sent
    assert receiver.received[0].headers["Idempotency-Key"] == notification.key


def test_a_worker_killed_mid_send_is_taken_over_under_the_same_key(
    session_factory: sessionmaker[Session],
    settings: Settings,
    receiver: HttpReceiver,
    tmp_path: Path,
    make_incident: MakeIncident,
    webhook_key: str,
) -> None:
    make_incident("damkar_ttu")
    config = _config(tmp_path, settings, receiver.url, timeout=60)
    receiver.script = ["hang"]
    receiver.hang_seconds = 30
    worker = subprocess.Popen([CALLCENTER, "notify"], env=_env(config), cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 30
        while not receiver.received:
            assert time.monotonic() < deadline, "the worker never sent"
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    # The same worker in this process, on the same settings, with a clock it can move.
    clock = Clock()
    settings = with_notify(
        settings,
        claim_seconds=30,
        agencies={"damkar_ttu": contacts(webhook(receiver.url))},
    )
    worker_here = Worker(session_factory, settings, clock=clock)
    assert worker_here.run_once() == 0  # the dead worker's claim holds: nobody sends
    assert len(receiver.received) == 1
    clock.advance(seconds=31)  # its claim runs out
    assert worker_here.run_once() == 1
    assert worker_here.run_once() == 0

    assert len(receiver.received) == 2
    assert len({r.headers["Idempotency-Key"] for r in receiver.received}) == 1
    with session_factory() as session:
        notification = session.scalars(select(Notification)).one()
        attempts = session.scalars(select(DeliveryAttempt)).all()
    assert notification.status is DeliveryStatus.sent
    assert [a.ok for a in attempts] == [True]


def test_serve_runs_the_worker_beside_the_api(
    session_factory: sessionmaker[Session],
    settings: Settings,
    receiver: HttpReceiver,
    tmp_path: Path,
    make_incident: MakeIncident,
) -> None:
    make_incident("damkar_ttu")
    config = _config(tmp_path, settings, receiver.url, timeout=5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = subprocess.Popen(
        [CALLCENTER, "serve", "--port", str(port), "--no-migrate"],
        env=_env(config),
        cwd=PROJECT_ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not receiver.received:
            assert serve.poll() is None, "serve stopped"
            assert time.monotonic() < deadline, "serve's worker never sent"
            time.sleep(0.2)
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=30)
    assert receiver.received[0].json()["type"] == "assigned"
    with session_factory() as session:
        assert session.scalars(select(Notification.status)).one() is DeliveryStatus.sent
