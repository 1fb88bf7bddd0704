"""Statistics readers never hold up each other, a tag or the listener (issue 18, item 1).

Before: each statistics request refreshed the rollups in a dependency on a request thread, took
the write lock (SQLite) or the refresh lock (PostgreSQL) there, and released it at a commit that
needed another request thread. With every request thread taken by readers waiting on that lock,
nobody could commit: the readers and an operator's tag waited until the pool timed out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import anyio.to_thread
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import Classification, Role
from tests.builders import make_call
from tests.conftest import LoginFn

READERS = 6
REQUEST_THREADS = 2  # fewer than the readers: the shape of 80 readers on 40 threads


def _set_request_threads(client: TestClient, tokens: int) -> None:
    def set_tokens() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = tokens

    assert client.portal is not None
    client.portal.call(set_tokens)


def test_readers_after_a_change_never_wait_on_a_lock_held_for_a_request_thread(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        call_id = make_call(session, classification=Classification.prank).id
    supervisor = login(Role.supervisor)
    operator = login(Role.operator)
    summary = "/api/v1/stats/summary?from=2025-01-01&to=2025-12-31"
    assert client.get(summary, headers=supervisor).status_code == 200  # rollups built once
    retag = client.put(
        f"/api/v1/calls/{call_id}/classification",
        json={"classification": "emergency"},
        headers=operator,
    )
    assert retag.status_code == 200, retag.text

    _set_request_threads(client, REQUEST_THREADS)
    requests: list[Callable[[], Any]] = [
        lambda: client.get(summary, headers=supervisor) for _ in range(READERS)
    ]
    requests.append(
        lambda: client.put(
            f"/api/v1/calls/{call_id}/classification",
            json={"classification": "prank", "reason": "child_playing"},
            headers=operator,
        )
    )
    start = threading.Barrier(len(requests))

    def send(request: Callable[[], Any]) -> Any:
        start.wait()
        return request()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        futures = [pool.submit(send, request) for request in requests]
        _done, stalled = wait(futures, timeout=20)
        if stalled:
            _set_request_threads(client, 40)  # let the stalled requests finish before failing
        statuses = [future.result().status_code for future in futures]
    assert not stalled, f"{len(stalled)} of {len(futures)} requests stalled"
    assert statuses == [200] * len(requests)
    figures = client.get(summary, headers=supervisor).json()
    assert figures["by_classification"]["prank"] == 1, figures


def test_a_tag_goes_ahead_while_the_refresh_a_reader_waits_for_reads_the_calls(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    """The refresh reads the calls table without SQLite's write lock (it writes what it found in
    a short transaction after): held in the middle of its reads, it does not hold up a tag."""
    with session_factory.begin() as session:
        call_id = make_call(session, classification=Classification.prank).id
    supervisor = login(Role.supervisor)
    operator = login(Role.operator)
    summary = "/api/v1/stats/summary?from=2025-01-01&to=2025-12-31"
    assert client.get(summary, headers=supervisor).status_code == 200  # rollups built once
    with session_factory.begin() as session:
        make_call(session, classification=Classification.emergency)  # for the next refresh

    reading, release = threading.Event(), threading.Event()

    def hold(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The refresher's search for changed calls: the first read of calls it groups.
        refreshing = threading.current_thread().name == "rollup-refresh"
        if refreshing and "FROM calls" in statement and "GROUP BY" in statement:
            reading.set()
            release.wait(30)

    engine = client.app.state.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", hold)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            reader = pool.submit(client.get, summary, headers=supervisor)
            assert reading.wait(30), "the refresh never read the calls"
            tag = pool.submit(
                client.put,
                f"/api/v1/calls/{call_id}/classification",
                json={"classification": "emergency"},
                headers=operator,
            )
            done, _ = wait([tag], timeout=20)
            held_meanwhile = not release.is_set()
            release.set()
            assert done, "the tag waited for the statistics refresh to finish"
            assert held_meanwhile
            assert tag.result().status_code == 200, tag.result().text
            assert reader.result().status_code == 200
    finally:
        release.set()
        event.remove(engine, "before_cursor_execute", hold)
    # The refresh that was held described its snapshot; the next one finds the tag.
    figures = client.get(summary, headers=supervisor).json()
    assert figures["by_classification"]["emergency"] == 2, figures
    assert figures["by_classification"]["prank"] == 0, figures


def test_a_tag_goes_ahead_while_readers_hold_every_pooled_connection(
    client: TestClient, login: LoginFn, session_factory: sessionmaker[Session]
) -> None:
    """The write threads have connections of their own: readers holding every connection of
    the request pool (here taken directly, as slow statistics readers would) hold up no tag."""
    with session_factory.begin() as session:
        call_id = make_call(session).id
    operator = login(Role.operator)
    engine = client.app.state.engine  # type: ignore[attr-defined]
    # Every connection the pool hands out: its size and make_engine's max_overflow (10).
    held = [engine.connect() for _ in range(engine.pool.size() + 10)]
    try:
        for connection in held:
            connection.execute(text("SELECT 1"))
        with ThreadPoolExecutor(max_workers=1) as pool:
            tag = pool.submit(
                client.put,
                f"/api/v1/calls/{call_id}/classification",
                json={"classification": "emergency"},
                headers=operator,
            )
            done, _ = wait([tag], timeout=20)
            pool_was_full = engine.pool.checkedout() == len(held)
            for connection in held:
                connection.close()
            held.clear()
            assert done, "the tag waited for a pooled connection"
            assert pool_was_full
            assert tag.result().status_code == 200, tag.result().text
    finally:
        for connection in held:
            connection.close()
