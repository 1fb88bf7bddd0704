"""How long an upgrade of a year of call events takes on PostgreSQL, and what it blocks
(issue 18, item 8).

A fresh database at 0004 (before the migrations that rewrite call_events) gets EVENTS events
(a year of this line is about 1.5 million: 10,000 calls of ~150 events each), as the listener of
that time stored them (headers as JSON, ~15 headers each). Then every later migration runs, one
at a time, while two probes act as the listener and the API would: every 20 ms each takes, in a
transaction of its own, the lock an insert into call_events (ROW EXCLUSIVE) or a read of it
(ACCESS SHARE) takes. Prints each migration's time and the longest wait of each probe in it.

    make bench PARTS=upgrade
    BENCH_UPGRADE_EVENTS=150000 python -m benchmarks.upgrade
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from benchmarks.classification import POSTGRES_ADMIN_URL
from callcenter.db import make_engine
from callcenter.db.migrate import alembic_config, upgrade

EVENTS = int(os.environ.get("BENCH_UPGRADE_EVENTS", "1500000"))
BEFORE = "0004_incidents"
PROBE_EVERY_S = 0.02
PROBES = {"insert": "ROW EXCLUSIVE", "read": "ACCESS SHARE"}

# ~15 headers, as an AMI Newstate frame carries; n numbers the event (150 a call).
_HEADERS = """json_build_array(
    json_build_array('Event', 'Newstate'), json_build_array('Privilege', 'call,all'),
    json_build_array('Timestamp', (1735689600 + n * 21)::text || '.123456'),
    json_build_array('Channel', 'PJSIP/trunk-' || lpad((n / 150)::text, 8, '0')),
    json_build_array('ChannelState', '6'), json_build_array('ChannelStateDesc', 'Up'),
    json_build_array('CallerIDNum', '0812' || lpad((n / 150 % 3000)::text, 7, '0')),
    json_build_array('CallerIDName', '<unknown>'), json_build_array('ConnectedLineNum', '112'),
    json_build_array('ConnectedLineName', 'Operator'), json_build_array('Language', 'id'),
    json_build_array('AccountCode', ''), json_build_array('Context', 'emergency-112'),
    json_build_array('Exten', '112'), json_build_array('Priority', '1'),
    json_build_array('Uniqueid', (1735689600 + n / 150 * 3150)::text || '.' || (n / 150)),
    json_build_array('Linkedid', (1735689600 + n / 150 * 3150)::text || '.' || (n / 150)))"""


@contextmanager
def fresh_database() -> Iterator[str]:
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cc_upgrade_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(engine: Engine) -> None:
    step = 100_000
    for first in range(1, EVENTS + 1, step):
        last = min(EVENTS, first + step - 1)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO call_events (pbx, dedup_key, uniqueid, linkedid, name,"
                    " event_time, received_at, headers)"
                    " SELECT 'pbx', md5(n::text), (n / 150)::text, (n / 150)::text, 'Newstate',"
                    " to_timestamp(1735689600 + n * 21), to_timestamp(1735689600 + n * 21),"
                    f" {_HEADERS} FROM generate_series(CAST(:first AS bigint),"
                    " CAST(:last AS bigint)) AS n"
                ),
                {"first": first, "last": last},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE call_events"))


class Probe:
    """Takes ``mode`` on call_events every PROBE_EVERY_S, in a process of its own (in this one it
    would wait for the GIL behind the migration's Python); the longest wait per migration."""

    def __init__(self, url: str, mode: str) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.longest = spawn.Value("d", 0.0)
        self.stop = spawn.Event()
        self.process = spawn.Process(target=_probe, args=(url, mode, self.longest, self.stop))
        self.process.start()

    def take(self) -> float:
        with self.longest.get_lock():
            longest, self.longest.value = self.longest.value, 0.0
        return float(longest)

    def close(self) -> None:
        self.stop.set()
        self.process.join(30)


def _probe(url: str, mode: str, longest: Any, stop: Any) -> None:
    engine = make_engine(url)
    while not stop.wait(PROBE_EVERY_S):
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(text(f"LOCK TABLE call_events IN {mode} MODE"))
        waited = time.perf_counter() - started
        with longest.get_lock():
            longest.value = max(longest.value, waited)
    engine.dispose()


def main() -> None:
    with fresh_database() as url:
        engine = make_engine(url)
        upgrade(engine, BEFORE)
        started = time.perf_counter()
        seed(engine)
        print(f"  {EVENTS:,} events at {BEFORE} in {time.perf_counter() - started:.0f} s")
        script = ScriptDirectory.from_config(alembic_config(engine))
        revisions = [r.revision for r in script.walk_revisions(BEFORE, "heads")][::-1][1:]
        probes = {name: Probe(url, mode) for name, mode in PROBES.items()}
        time.sleep(5)  # the probes have started
        total = time.perf_counter()
        try:
            for revision in revisions:
                for probe in probes.values():
                    probe.take()
                began = time.perf_counter()
                upgrade(engine, revision)
                took = time.perf_counter() - began
                time.sleep(2 * PROBE_EVERY_S)  # a probe waiting at the end reports
                waits = "  ".join(
                    f"{name} waited up to {probe.take() * 1000:7.0f} ms"
                    for name, probe in probes.items()
                )
                print(f"  {revision:34} {took:7.1f} s  {waits}", flush=True)
        finally:
            for probe in probes.values():
                probe.close()
        print(f"  upgrade to head: {time.perf_counter() - total:.0f} s")
        engine.dispose()


if __name__ == "__main__":
    main()
