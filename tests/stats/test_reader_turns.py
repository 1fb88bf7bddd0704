"""Statistics readers work on the event loop a few at a time, share their waits, and never stand
in an operator's way (issue 18, item 1; stats.turns)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message

from callcenter.models import Role
from callcenter.stats import rollup
from callcenter.stats.turns import ReaderTurns, waiting
from tests.conftest import LoginFn

TURNS = 2
READERS = 12
SUMMARY = "/api/v1/stats/summary?from=2025-01-01&to=2025-12-31"


class Probe:
    """What the readers of the little app below are doing, counted on its event loop."""

    def __init__(self) -> None:
        self.working = self.most_working = 0
        self.waiting = self.most_waiting = 0
        self.refreshed = asyncio.Event()
        self.hold_turns = asyncio.Event()

    async def work(self) -> None:
        self.working += 1
        self.most_working = max(self.most_working, self.working)
        for _ in range(3):  # a reader's steps on the loop, with other tasks between them
            await asyncio.sleep(0)
        self.working -= 1


def reader_app(probe: Probe) -> FastAPI:
    app = FastAPI()
    app.add_middleware(ReaderTurns, turns=TURNS)

    @app.get("/api/v1/stats/summary")
    async def summary(request: Request) -> dict[str, str]:
        await probe.work()
        async with waiting(request):  # as for a rollup refresh
            probe.waiting += 1
            probe.most_waiting = max(probe.most_waiting, probe.waiting)
            await probe.refreshed.wait()
            probe.waiting -= 1
        await probe.work()
        return {"figures": "fresh"}

    @app.get("/api/v1/stats/held")
    async def held() -> dict[str, str]:
        await probe.hold_turns.wait()  # works on, never sets its turn aside
        return {}

    @app.put("/api/v1/calls/1/classification")
    async def tag() -> dict[str, str]:
        return {"classification": "emergency"}

    return app


async def request(app: ASGIApp, method: str, path: str) -> int:
    """One request straight to the ASGI app, on the caller's event loop: its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api")],
        "client": ("127.0.0.1", 5000),
        "server": ("api", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


async def _until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def test_readers_work_a_few_at_a_time_but_all_wait_for_one_refresh_together() -> None:
    async def scenario() -> tuple[Probe, list[int]]:
        probe = Probe()
        app = reader_app(probe)
        readers = [
            asyncio.create_task(request(app, "GET", "/api/v1/stats/summary"))
            for _ in range(READERS)
        ]
        # Every reader reaches the wait: a turn set aside lets the next one in.
        await _until(lambda: probe.waiting == READERS)
        probe.refreshed.set()
        return probe, list(await asyncio.gather(*readers))

    probe, statuses = asyncio.run(scenario())
    assert statuses == [200] * READERS
    assert probe.most_waiting == READERS  # one refresh serves them all
    assert probe.most_working == TURNS  # but only TURNS of them work on the loop at once


def test_a_tag_takes_no_turn_when_every_turn_is_held() -> None:
    async def scenario() -> tuple[int, bool]:
        probe = Probe()
        app = reader_app(probe)
        holders = [
            asyncio.create_task(request(app, "GET", "/api/v1/stats/held")) for _ in range(TURNS)
        ]
        queued = asyncio.create_task(request(app, "GET", "/api/v1/stats/summary"))
        await asyncio.sleep(0.05)
        tag = await asyncio.wait_for(request(app, "PUT", "/api/v1/calls/1/classification"), 5)
        reader_still_queued = not queued.done() and probe.working == 0
        probe.hold_turns.set()
        probe.refreshed.set()
        await asyncio.gather(*holders, queued)
        return tag, reader_still_queued

    status, reader_still_queued = asyncio.run(scenario())
    assert status == 200
    assert reader_still_queued  # the statistics reader waited for a turn; the tag did not


@pytest.fixture
def paused_refresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Rollup refreshes wait until the event is set."""
    resume = threading.Event()
    real = rollup.refresh_in_snapshot

    def paused(*args: Any, **kwargs: Any) -> Any:
        resume.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(rollup, "refresh_in_snapshot", paused)
    yield resume
    resume.set()


def test_the_services_readers_wait_for_a_refresh_without_holding_a_turn(
    client: TestClient, login: LoginFn, paused_refresh: threading.Event
) -> None:
    supervisor = login(Role.supervisor)
    app: Any = client.app
    refresher = app.state.rollup_refresher
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        replies = [pool.submit(client.get, SUMMARY, headers=supervisor) for _ in range(READERS)]
        # More readers than turns (stats.turns.TURNS) wait for the same refresh at once.
        for _ in range(1000):
            if refresher.waiting_readers >= READERS:
                break
            threading.Event().wait(0.01)
        waited_together = refresher.waiting_readers
        paused_refresh.set()
        statuses = [reply.result(30).status_code for reply in replies]
    assert waited_together == READERS
    assert statuses == [200] * READERS
