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
