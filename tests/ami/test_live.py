"""GET /api/v1/live over real HTTP: call changes from a replayed trace reach a logged-in watcher.

On PostgreSQL the API's bus is its own (LISTEN on its own connection) and the listener's is
another (NOTIFY): the same path as across processes. On SQLite they share the process's bus.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.fake_server import FakeAsterisk, Recording, coalesce
from callcenter.ami.runtime import AmiRuntime
from callcenter.app import create_app
from callcenter.live import PostgresBus
from callcenter.models import Role
from callcenter.settings import Settings
from tests.ami.helpers import expected_calls, wait_for
from tests.builders import PASSWORD, make_user
from tests.conftest import TRACES
from tests.http_server import served

ANSWERED = TRACES / "01-answered"


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(settings)
    with served(app) as base:
        yield app, base


def token(base: str, session_factory: sessionmaker[Session]) -> str:
    with session_factory.begin() as session:
        username = make_user(session, role=Role.operator).username
    response = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    )
    access: str = response.json()["access_token"]
    return access


def test_live_needs_a_login(server: tuple[FastAPI, str]) -> None:
    _, base = server
    assert httpx.get(f"{base}/api/v1/live").status_code == 401
    assert httpx.get(f"{base}/api/v1/live?access_token=forged").status_code == 401


def test_call_changes_stream_to_a_watcher(
    server: tuple[FastAPI, str],
    settings: Settings,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    app, base = server
    access = token(base, session_factory)
    uniqueid = expected_calls(ANSWERED)[0]["uniqueid"]
    ami = settings.ami.model_copy(
        update={
            "enabled": True,
            "secret": SecretStr("ttu112secret"),
            "spool_dir": tmp_path / "spool",
        }
    )
    listener_settings = settings.model_copy(update={"ami": ami})
    seen: list[dict[str, Any]] = []

    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{base}/api/v1/live", params={"access_token": access}) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")  # subscribed: publish now
        bus = app.state.live_bus
        if isinstance(bus, PostgresBus):
            wait_for(bus.listening.is_set, "LISTEN active")
        with FakeAsterisk([coalesce(Recording.load(ANSWERED, stamp=True).frames)]) as fake:
            # SQLite: one process, one bus; PostgreSQL: the listener's own, NOTIFY between them.
            shared = None if isinstance(bus, PostgresBus) else bus
            runtime = AmiRuntime(listener_settings, bus=shared, stop_at_eof=True, port=fake.port)
            runtime.start()
            for line in lines:
                if line.startswith("data: "):
                    message = json.loads(line.removeprefix("data: "))
                    if message.get("type") == "resync":  # sent after each LISTEN
                        continue
                    seen.append(message)
                    if seen[-1]["outcome"] == "answered":
                        break
            runtime.wait()
            runtime.engine.dispose()
            if runtime.bus is not bus:
                runtime.bus.close()

    mine = [m for m in seen if m["uniqueid"] == uniqueid]
    outcomes = [m["outcome"] for m in mine]
    assert outcomes[-1] == "answered"
    assert mine[-1]["operator"] == "Operator Andi"
    assert mine[-1]["caller_e164"] == "+6281234567890"


def test_a_withheld_number_reaches_a_supervisor_masked(
    server: tuple[FastAPI, str], session_factory: sessionmaker[Session]
) -> None:
    """The live stream is a list too: a supervisor watching it sees a private caller's number
    masked; the message on the bus (shared by all watchers) is left whole."""
    from datetime import UTC, datetime

    from callcenter.ami.call_state import CallState
    from callcenter.ami.runtime import live_message

    app, base = server
    with session_factory.begin() as session:
        username = make_user(session, role=Role.supervisor).username
    access = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    ).json()["access_token"]
    start = datetime(2026, 11, 28, 1, 54, tzinfo=UTC)
    state = CallState(
        uniqueid="1795830989.12",
        linkedid="1795830989.12",
        channel="PJSIP/trunk-0000000c",
        started_at=start,
        last_event_at=start,
        caller_id_raw="038821234",
        private=True,
    )
    message = live_message(state, pbx="ttu-pbx-1", region="ID")
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{base}/api/v1/live", params={"access_token": access}) as stream,
    ):
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        bus = app.state.live_bus
        if isinstance(bus, PostgresBus):
            wait_for(bus.listening.is_set, "LISTEN active")
        bus.publish([message])
        got = next(
            data
            for data in (json.loads(line[6:]) for line in lines if line.startswith("data: "))
            if data.get("type") != "resync"  # PostgreSQL's bus says resync after each LISTEN
        )
    assert got["caller_id_private"] is True
    assert (got["caller_id_raw"], got["caller_e164"]) == ("******234", "+*******234")
    assert message["caller_id_raw"] == "038821234"
