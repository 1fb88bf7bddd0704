"""Statistics readers asking the same question after the same refresh share one computation and
one body (stats.shared), and sharing never serves a reader figures older than its request."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Classification, Role
from callcenter.settings import Settings
from callcenter.stats import queries
from callcenter.stats.refresher import RollupRefresher
from callcenter.stats.routes import json_answer
from callcenter.stats.shared import Answer, Compute, SharedReads
from tests.builders import make_call
from tests.conftest import LoginFn

YEAR = (date(2025, 1, 1), date(2025, 12, 31))
SUMMARY = "/api/v1/stats/summary?from=2025-01-01&to=2025-12-31"
READERS = 8


def _prank_call(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        make_call(session, classification=Classification.prank)


def test_readers_of_one_refresh_share_one_computation_of_fresh_figures(
    engine: Engine, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _prank_call(session_factory)
    refresher = RollupRefresher(engine, timezone=settings.timezone, safety=timedelta(0))
    shared = SharedReads(session_factory)
    gate = threading.Event()
    runs: list[int] = []

    def compute(session: Session) -> Answer:
        runs.append(1)
        gate.wait(30)  # until every reader has asked
        return json_answer(queries.summary(session, *YEAR, settings))

    async def scenario() -> list[Answer]:
        generation = await refresher.fresh()
        readers = [
            asyncio.create_task(shared.answer(("summary", YEAR), generation, compute))
            for _ in range(READERS)
        ]
        await asyncio.sleep(0)  # every reader has asked: one computation runs, held
        gate.set()
        return await asyncio.gather(*readers)

    try:
        answers = asyncio.run(scenario())
    finally:
        refresher.close()
        shared.close()
    assert len(runs) == 1
    assert shared.computations == 1
    assert all(answer is answers[0] for answer in answers)
    assert json.loads(answers[0].body)["by_classification"]["prank"] == 1  # fresh


def test_a_reader_of_a_later_refresh_gets_a_computation_of_its_own(
    session_factory: sessionmaker[Session],
) -> None:
    shared = SharedReads(session_factory)
    served: list[str] = []

    def computing(name: str) -> Compute:
        def compute(_session: Session) -> Answer:
            served.append(name)
            return Answer(name.encode(), "text/plain")

        return compute

    async def scenario() -> list[bytes]:
        first = await shared.answer("q", 2, computing("after refresh 2"))
        later = await shared.answer("q", 3, computing("after refresh 3"))
        # Served by refresh 2, began after it: what began after refresh 3 is fresh enough.
        straggler = await shared.answer("q", 2, computing("again after refresh 2"))
        other = await shared.answer("another question", 3, computing("another"))
        return [first.body, later.body, straggler.body, other.body]

    try:
        bodies = asyncio.run(scenario())
    finally:
        shared.close()
    assert bodies == [b"after refresh 2", b"after refresh 3", b"after refresh 3", b"another"]
    assert served == ["after refresh 2", "after refresh 3", "another"]


def test_a_failed_computation_is_not_served_to_the_next_reader(
    session_factory: sessionmaker[Session],
) -> None:
    shared = SharedReads(session_factory)
    attempts: list[int] = []

    def compute(_session: Session) -> Answer:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the database went away")
        return Answer(b"figures", "text/plain")

    async def scenario() -> bytes:
        with pytest.raises(RuntimeError, match="went away"):
            await shared.answer("q", 1, compute)
        return (await shared.answer("q", 1, compute)).body

    try:
        assert asyncio.run(scenario()) == b"figures"
    finally:
        shared.close()
    assert len(attempts) == 2


def test_concurrent_readers_get_the_same_figures_and_a_later_reader_sees_a_new_commit(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    _prank_call(session_factory)
    supervisor = login(Role.supervisor)
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        replies = list(pool.map(lambda _: client.get(SUMMARY, headers=supervisor), range(READERS)))
    assert [r.status_code for r in replies] == [200] * READERS
    assert len({r.content for r in replies}) == 1
    assert replies[0].json()["by_classification"]["prank"] == 1

    _prank_call(session_factory)  # committed before the next request: it must count
    again = client.get(SUMMARY, headers=supervisor)
    assert again.status_code == 200
    assert again.json()["by_classification"]["prank"] == 2
    assert again.headers["content-type"] == "application/json"


def test_an_operator_may_not_read_statistics_nor_join_a_shared_answer(
    client: TestClient, login: LoginFn
) -> None:
    supervisor, operator = login(Role.supervisor), login(Role.operator)
    assert client.get(SUMMARY, headers=supervisor).status_code == 200
    assert client.get(SUMMARY, headers=operator).status_code == 403
