"""The listener's own failures: an unwritable or corrupt spool, a dead consumer, a database that
is not there at start (issue 18 item 9, issue 14 item 3)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from callcenter.ami.call_state import CallState
from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from callcenter.ami.spool import Spool
from callcenter.db import make_engine
from callcenter.db.migrate import upgrade
from tests.ami.helpers import (
    assert_matches_expected,
    exported,
    make_listener,
    recording_plan,
    replay,
    wait_for,
)
from tests.ami.test_faults import database_locked
from tests.conftest import TRACES, new_postgres_database
from tests.tcp_proxy import TcpProxy, free_port

ANSWERED = TRACES / "01-answered"
ABANDONED = TRACES / "02-abandoned"
CONCURRENT = TRACES / "13-combined-concurrent"


def test_a_spool_the_disk_refuses_keeps_the_batches_in_memory(
    database_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    with database_locked(database_url), FakeAsterisk(recording_plan(ANSWERED)) as fake:
        listener, store = make_listener(database_url, fake.port, spool_dir, stop_at_eof=True)
        shutil.rmtree(spool_dir)
        spool_dir.write_bytes(b"")  # a file where the directory was: every write fails
        listener.start()
        wait_for(lambda: listener.counters.spool_errors > 0, "a spool write refused")
        wait_for(fake.finished.is_set, "the stream sent")
        assert "spool cannot be written" in listener.readiness()
        assert listener._threads[0].is_alive()
        spool_dir.unlink()
        spool_dir.mkdir()
        wait_for(lambda: listener.counters.spooled_batches > 0, "the held batches spooled")
    assert listener.wait(60)
    store.engine.dispose()
    assert_matches_expected(database_url, ANSWERED)
    assert listener.counters.consumer_restarts == 0


def test_a_corrupt_spool_file_is_set_aside_and_the_rest_drained(
    database_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    with database_locked(database_url):
        first, _fake = replay(database_url, recording_plan(ABANDONED), spool_dir)
    assert len(first.spool) > 0
    (spool_dir / "000000000000.batch").write_bytes(b'{"events": [["not base64"')

    second, _fake = replay(database_url, recording_plan(ANSWERED), spool_dir)

    rows = exported(database_url)
    assert sorted(rows) == sorted(["1795828474.13", "1795828539.21"])
    assert second.counters.corrupt_spool_files == 1
    assert [p.name for p in spool_dir.iterdir()] == ["000000000000.batch.corrupt"]
    # The next start does not trip on it again.
    third, _fake = replay(database_url, recording_plan(ANSWERED), spool_dir)
    assert third.counters.corrupt_spool_files == 0


# The consumer thread's death is what these tests make happen (pytest reports it).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_consumer_is_seen_and_started_again(database_url: str, tmp_path: Path) -> None:
    deaths: list[int] = []

    def publish_dies_once(states: list[CallState]) -> None:
        if not deaths:
            deaths.append(len(states))
            raise SystemExit  # not an Exception: it ends the consumer thread

    plan = recording_plan(CONCURRENT)
    with FakeAsterisk(plan) as fake:
        listener, store = make_listener(
            database_url, fake.port, tmp_path / "spool", stop_at_eof=True, queue_size=2
        )
        listener.publish = publish_dies_once
        listener.start()
        wait_for(lambda: deaths, "the consumer died")
        assert fake.finished.wait(60)
        assert listener.wait(60)  # seen dead (by the watchdog, or here), started, drained
        store.engine.dispose()
    assert listener.counters.consumer_restarts >= 1
    assert_matches_expected(database_url, CONCURRENT)


# The consumer thread's death is what these tests make happen (pytest reports it).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_stop_does_not_block_on_a_dead_consumer(database_url: str, tmp_path: Path) -> None:
    deaths: list[int] = []

    def publish_dies_once(states: list[CallState]) -> None:
        if not deaths:
            deaths.append(len(states))
            raise SystemExit

    # The first calls, then (a second later, the consumer dead by then) the rest in small reads.
    recorded = Recording.load(CONCURRENT, stamp=True).frames
    later = [Chunk(c.data, 1.0) for c in coalesce(recorded[100:], 512)]
    plan = [[Chunk(c.data, 0.0) for c in coalesce(recorded[:100])], later]
    with FakeAsterisk([[c for part in plan for c in part]], realtime=True) as fake:
        listener, store = make_listener(
            database_url,
            fake.port,
            tmp_path / "spool",
            queue_size=1,
            settings={"ping_interval_seconds": 3600},  # no watchdog before stop()
        )
        listener.publish = publish_dies_once
        listener.start()
        wait_for(lambda: deaths, "the consumer died")
        wait_for(listener._queue.full, "the queue full behind the dead consumer")
        stopper = threading.Thread(target=listener.stop)
        stopper.start()
        stopper.join(60)  # a guard against a hang, not a timing
        assert not stopper.is_alive(), "stop() blocked on the dead consumer"
        store.engine.dispose()
    assert listener.counters.consumer_restarts == 1


@pytest.mark.postgres
def test_the_listener_starts_without_its_database_and_stores_when_it_is_back(
    tmp_path: Path,
) -> None:
    """PostgreSQL only: a SQLite file is never unreachable."""
    with new_postgres_database("cc_unreachable") as database_url:
        engine = make_engine(database_url)
        upgrade(engine)
        engine.dispose()
        url = make_url(database_url)
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with FakeAsterisk(recording_plan(ANSWERED)) as fake:
            listener, store = make_listener(
                through, fake.port, tmp_path / "spool", stop_at_eof=True
            )
            listener.start()  # nothing listens at the proxy's port: the database is away
            wait_for(fake.finished.is_set, "the stream sent")
            wait_for(lambda: len(listener.spool) > 0, "the frames spooled as read")
            assert "database unavailable" in listener.readiness()
            proxy.start()
            try:
                assert listener.wait(60)
            finally:
                store.engine.dispose()
                proxy.stop()
        assert len(listener.spool) == 0
        assert_matches_expected(database_url, ANSWERED)


def test_callcenter_ami_starts_while_the_database_is_unreachable(tmp_path: Path) -> None:
    with FakeAsterisk(recording_plan(ANSWERED), close_at_end=False) as fake:
        env = {
            **os.environ,
            "CALLCENTER_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
            "CALLCENTER_AMI__HOST": "127.0.0.1",
            "CALLCENTER_AMI__PORT": str(fake.port),
            "CALLCENTER_AMI__SECRET": "ttu112secret",
            "CALLCENTER_AMI__SPOOL_DIR": str(tmp_path / "spool"),
        }
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "callcenter"), "ami"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for(fake.finished.is_set, "the listener logged in and read the stream")
            wait_for(lambda: any((tmp_path / "spool").glob("*.reads")), "the reads spooled")
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert b"database is unreachable" in err
    spool = Spool(tmp_path / "spool", 1 << 20)
    assert len(spool) > 0
