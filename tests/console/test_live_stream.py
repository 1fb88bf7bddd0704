"""The console's live stream (/console/live) over real HTTP: every page gets every change, with
the caller's prank flag, a withheld number masked for a role that may not see it, the same
bytes built once for all pages; a page that falls behind is told to resync."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.call_state import CallState
from callcenter.ami.runtime import live_message
from callcenter.app import create_app
from callcenter.console import stream, web
from callcenter.live import InProcessBus, PostgresBus
from callcenter.models import Role
from callcenter.settings import Settings
from tests.ami.helpers import wait_for
from tests.builders import PASSWORD, make_caller, make_user
from tests.http_server import served


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(settings)
    with served(app) as base:
        yield app, base


def _logged_in(base: str, factory: sessionmaker[Session], role: Role) -> httpx.Client:
    with factory.begin() as session:
        username = make_user(session, role=role).username
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/console/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert client.cookies.get(web.SESSION_COOKIE)
    return client


def _call(uniqueid: str, number: str, *, private: bool = False) -> dict[str, Any]:
    start = datetime(2026, 11, 28, 1, 54, tzinfo=UTC)
    state = CallState(
        uniqueid=uniqueid,
        linkedid=uniqueid,
        channel="PJSIP/trunk-0000000c",
        started_at=start,
        last_event_at=start,
        caller_id_raw=number,
        private=private,
    )
    return live_message(state, pbx="ttu-pbx-1", region="ID")


def _calls(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next ``count`` call changes on a stream (the PostgreSQL bus's resyncs skipped)."""
    got: list[dict[str, Any]] = []
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "call":
            got.append(json.loads(line[6:]))
            if len(got) == count:
                break
    return got


def test_every_page_gets_every_change_flagged_and_masked_by_role(
    server: tuple[FastAPI, str], session_factory: sessionmaker[Session], settings: Settings
) -> None:
    app, base = server
    with session_factory.begin() as session:
        make_caller(session, number="081355550000", prank_count=settings.ivr.prank_threshold)
    operator = _logged_in(base, session_factory, Role.operator)
    supervisor = _logged_in(base, session_factory, Role.supervisor)
    changes = [
        _call("1795830989.12", "081355550000"),
        _call("1795830989.14", "038821234", private=True),
        *(_call(f"1795830990.{n}", f"0812000000{n:02d}") for n in range(30)),
    ]
    with (
        closing(operator),
        closing(supervisor),
        operator.stream("GET", "/console/live") as operator_stream,
        supervisor.stream("GET", "/console/live") as supervisor_stream,
    ):
        assert operator_stream.headers["content-type"].startswith("text/event-stream")
        operator_lines = operator_stream.iter_lines()
        supervisor_lines = supervisor_stream.iter_lines()
        assert next(operator_lines).startswith("retry:")  # subscribed: publish now
        assert next(supervisor_lines).startswith("retry:")
        bus = app.state.live_bus
        if isinstance(bus, PostgresBus):
            wait_for(bus.listening.is_set, "LISTEN active")
        bus.publish(changes[:2])
        for n in range(2, len(changes), 3):
            bus.publish(changes[n : n + 3])
        seen_by_operator = _calls(operator_lines, len(changes))
        seen_by_supervisor = _calls(supervisor_lines, len(changes))

    for seen in (seen_by_operator, seen_by_supervisor):
        assert [m["uniqueid"] for m in seen] == [m["uniqueid"] for m in changes]
        assert [m["flagged"] for m in seen] == [True] + [False] * (len(changes) - 1)
    assert seen_by_operator[1]["caller_id_raw"] == "038821234"  # an operator calls back
    assert seen_by_supervisor[1]["caller_id_private"] is True
    assert (seen_by_supervisor[1]["caller_id_raw"], seen_by_supervisor[1]["caller_e164"]) == (
        "******234",
        "+*******234",
    )
    assert changes[1]["caller_id_raw"] == "038821234"  # the bus's message is left whole


def test_the_pages_share_one_subscription_and_the_same_bytes(
    session_factory: sessionmaker[Session],
) -> None:
    bus = InProcessBus()

    async def scenario() -> list[bytes]:
        hub = stream.LiveHub(bus, session_factory, prank_threshold=3)
        with (
            hub.page(Role.operator) as first,
            hub.page(Role.operator) as second,
            hub.page(Role.admin) as third,
        ):
            assert sum(len(inbox.subscribers) for inbox in bus._inboxes.values()) == 1
            bus.publish([_call("1795830989.12", "081355550000")])
            return [await page.take(5) for page in (first, second, third)]

    first, second, third = asyncio.run(scenario())
    assert b"1795830989.12" in first
    assert first is second is third  # built once, not once per page
    assert not bus._inboxes  # the last page gone, so is the subscription


def test_a_page_that_falls_behind_gets_a_resync_instead_of_what_it_missed() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        page = stream.Page(Role.operator)
        chunk = b"event: call\ndata: {}\n\n" * 1000
        for _ in range(stream.PAGE_BACKLOG_BYTES // len(chunk) + 2):
            page.push(chunk)
        behind = await page.take(1)
        page.push(chunk)
        return behind, await page.take(1)

    behind, after = asyncio.run(scenario())
    assert behind.startswith(stream.RESYNC_EVENT)
    assert len(behind) < stream.PAGE_BACKLOG_BYTES
    assert after == b"event: call\ndata: {}\n\n" * 1000  # and it goes on from there


def test_a_deactivated_operators_page_is_told_and_its_stream_closes(
    server: tuple[FastAPI, str],
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callcenter.console import board
    from callcenter.models import User

    monkeypatch.setattr(board, "RECHECK_SECONDS", 0.3)
    _, base = server
    page = _logged_in(base, session_factory, Role.operator)
    with session_factory() as session:
        operator_id = session.query(User.id).order_by(User.id.desc()).limit(1).scalar()

    def deactivate() -> None:
        with session_factory.begin() as session:
            user = session.get(User, operator_id)
            assert user is not None
            user.active = False

    timer = threading.Timer(0.5, deactivate)
    timer.start()
    with closing(page), page.stream("GET", "/console/live", timeout=10) as live:
        assert live.status_code == 200
        lines = list(live.iter_lines())  # the server ends it: a read time-out fails the test
    timer.join()
    assert "event: unauthorized" in lines
