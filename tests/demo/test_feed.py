"""`make demo`'s simulated PBX: recorded calls replayed as new calls of today, through the real
listener, and the demo accounts it prints."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.ami.fake_server import Chunk, FakeAsterisk, coalesce
from callcenter.ami.runtime import AmiRuntime
from callcenter.app import create_app
from callcenter.commands import demo
from callcenter.db import utcnow
from callcenter.demo import accounts, feed
from callcenter.models import Call, Outcome, User
from callcenter.settings import Settings


def uniqueids(chunks: list[Chunk]) -> set[bytes]:
    return {m for c in chunks for m in re.findall(rb"\nUniqueid: (\S+)\r", c.data)}


def test_each_replay_is_a_new_call_stamped_now() -> None:
    traces = feed.load_all()
    assert len(traces) >= 3
    one = feed.Loop(traces[:1], rounds=1, speed=1000)
    first, second = list(one), list(one)
    assert uniqueids(first)
    # Played again, the same recording gets identities of its own.
    assert not uniqueids(first) & uniqueids(second)
    stamps = [float(m) for c in first for m in re.findall(rb"\r\nTimestamp: ([\d.]+)\r\n", c.data)]
    assert len(stamps) == sum(1 for c in first if c.data.startswith(b"Event: "))
    assert all(abs(s - time.time()) < 60 for s in stamps)
    times = [c.at for c in first if c.at is not None]
    assert times == sorted(times)


def test_the_loop_feeds_the_real_listener_calls_of_today(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    recording = list(feed.Loop(feed.load_all(), rounds=10, speed=1000))
    ami = settings.ami
    with FakeAsterisk(
        [coalesce(recording)],
        username=ami.username,
        secret=ami.secret.get_secret_value(),
    ) as pbx:
        runtime = AmiRuntime(
            settings.model_copy(
                update={"ami": ami.model_copy(update={"spool_dir": settings.data_dir / "spool"})}
            ),
            port=pbx.port,
            stop_at_eof=True,
        )
        runtime.start()
        assert runtime.wait()
        runtime.close()
    with session_factory() as session:
        calls = list(session.scalars(select(Call)))
    # Five recordings of six calls (23-pjsip-hangup-in-ivr holds two), each played twice:
    # twelve calls, all of today.
    assert len(calls) == 12
    assert len({c.uniqueid for c in calls}) == 12
    assert all(abs(c.started_at - utcnow()) < timedelta(minutes=5) for c in calls)
    assert {c.outcome for c in calls} >= {Outcome.answered, Outcome.abandoned_in_queue}


def test_the_demo_accounts_log_in_with_the_printed_passwords(settings: Settings) -> None:
    created = demo.prepare(settings)
    assert {a.role.value for a in created} == {"admin", "supervisor", "operator"}
    assert demo.prepare(settings) == created  # a second start keeps them
    from callcenter.db import make_engine, make_sessionmaker

    with TestClient(create_app(settings)) as client:
        for account in accounts.ACCOUNTS:
            response = client.post(
                "/api/v1/auth/token",
                data={"username": account.username, "password": account.password},
            )
            assert response.status_code == 200, response.text
            assert response.json()["role"] == account.role.value
    engine = make_engine(settings.resolved_database_url)
    with make_sessionmaker(engine)() as session:
        operators = session.scalars(select(User).where(User.queue_member_interface.is_not(None)))
        assert {u.queue_member_interface for u in operators} == {"PJSIP/op1", "PJSIP/op2"}
    engine.dispose()
