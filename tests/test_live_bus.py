"""The PostgreSQL live bus survives bad notifications and lost connections, and tells its
watchers to resync whenever something may have been missed; publishing never waits on
PostgreSQL (issue 18, item 3)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from callcenter.live import CHANNEL, RESYNC, PostgresBus, _libpq_url
from tests.ami.helpers import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def bus(postgres_url: str) -> Iterator[PostgresBus]:
    live = PostgresBus(postgres_url)
    yield live
    live.close()


def _notify(url: str, payload: str) -> None:
    with psycopg.connect(_libpq_url(url), autocommit=True) as connection:
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


async def _next(subscription: Any) -> dict[str, Any]:
    message: dict[str, Any] = await asyncio.wait_for(subscription.get(), 10)
    return message


def test_a_notification_that_is_not_json_is_skipped_and_listening_goes_on(
    bus: PostgresBus, postgres_url: str
) -> None:
    async def scenario() -> list[dict[str, Any]]:
        with bus.subscribe() as subscription:
            await asyncio.to_thread(wait_for, bus.listening.is_set, "LISTEN active")
            got = [await _next(subscription)]  # the resync after LISTEN
            await asyncio.to_thread(_notify, postgres_url, "not json")
            await asyncio.to_thread(_notify, postgres_url, "[1, 2]")
            await asyncio.to_thread(_notify, postgres_url, '{"uniqueid": "1.1"}')
            got.append(await _next(subscription))
            return got

    assert asyncio.run(scenario()) == [RESYNC, {"uniqueid": "1.1"}]


def test_after_the_listen_connection_is_cut_watchers_are_told_to_resync(
    bus: PostgresBus, postgres_url: str
) -> None:
    def cut() -> None:
        with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'callcenter-live-listen' AND datname = current_database()"
            )
        # Published while nobody listens: lost to the watcher, hence the resync.
        _notify(postgres_url, '{"uniqueid": "in-the-gap"}')

    async def scenario() -> list[dict[str, Any]]:
        with bus.subscribe() as subscription:
            await asyncio.to_thread(wait_for, bus.listening.is_set, "LISTEN active")
            assert await _next(subscription) == RESYNC
            await asyncio.to_thread(cut)
            got = [await _next(subscription)]
            await asyncio.to_thread(wait_for, bus.listening.is_set, "LISTEN again")
            await asyncio.to_thread(_notify, postgres_url, '{"uniqueid": "after"}')
            while got[-1] != {"uniqueid": "after"}:
                got.append(await _next(subscription))
            return got

    got = asyncio.run(scenario())
    assert RESYNC in got
    assert got[-1] == {"uniqueid": "after"}


def test_publishing_never_waits_for_an_unresponsive_database() -> None:
    """A peer that accepts the connection and never answers (as a half-open one would)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        bus = PostgresBus(f"postgresql+psycopg://nobody@127.0.0.1:{port}/nothing")

        def publish_many() -> None:
            for n in range(5000):
                bus.publish([{"uniqueid": str(n)}])

        published = threading.Thread(target=publish_many)
        published.start()
        published.join(30)
        assert not published.is_alive()  # it queued (or dropped) them: the caller went on
        closer = threading.Thread(target=bus.close)
        closer.start()
        closer.join(60)
        assert not closer.is_alive()


def _call_change(n: int, size: int = 300) -> dict[str, Any]:
    return {"type": "call", "uniqueid": f"1795000000.{n}", "pad": "x" * size}


def test_a_batch_larger_than_one_notification_reaches_a_watcher_complete_and_in_order(
    bus: PostgresBus, postgres_url: str
) -> None:
    """Two publishes of ~100 kB each: several notifications apiece, far fewer than messages,
    each under PostgreSQL's 8,000 bytes; the watcher gets every message, in order."""
    first = [_call_change(n) for n in range(300)]
    second = [_call_change(n, size=50 + n % 700) for n in range(300, 600)]
    payloads: list[str] = []

    def count_notifications(listening: threading.Event, done: threading.Event) -> None:
        with psycopg.connect(_libpq_url(postgres_url), autocommit=True) as connection:
            connection.execute(f"LISTEN {CHANNEL}")
            listening.set()
            while not done.is_set():
                payloads.extend(n.payload for n in connection.notifies(timeout=0.2))

    async def scenario() -> list[dict[str, Any]]:
        listening, done = threading.Event(), threading.Event()
        counter = threading.Thread(target=count_notifications, args=(listening, done))
        counter.start()
        try:
            with bus.subscribe() as subscription:
                await asyncio.to_thread(wait_for, bus.listening.is_set, "LISTEN active")
                await asyncio.to_thread(wait_for, listening.is_set, "the counter listens")
                assert await _next(subscription) == RESYNC
                bus.publish(first)
                bus.publish(second)
                got: list[dict[str, Any]] = []
                while len(got) < len(first) + len(second):
                    got.append(await _next(subscription))
        finally:
            done.set()
            await asyncio.to_thread(counter.join, 30)
        return got

    assert asyncio.run(scenario()) == first + second
    assert 2 * 10 < len(payloads) < 2 * 40  # ~13 a publish, not 300
    assert all(len(p.encode()) < 8000 for p in payloads)


def test_a_message_over_the_notify_limit_is_a_resync_in_its_place(bus: PostgresBus) -> None:
    """PostgreSQL refuses a payload of 8,000 bytes: such a message cannot be sent, so its
    watchers are told to reload instead, and the messages around it still arrive."""
    messages = [_call_change(1), _call_change(2, size=9000), _call_change(3)]

    async def scenario() -> list[dict[str, Any]]:
        with bus.subscribe() as subscription:
            await asyncio.to_thread(wait_for, bus.listening.is_set, "LISTEN active")
            assert await _next(subscription) == RESYNC
            bus.publish(messages)
            return [await _next(subscription) for _ in messages]

    assert asyncio.run(scenario()) == [messages[0], RESYNC, messages[2]]
