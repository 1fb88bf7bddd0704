"""Console speed: live updates under an AMI surge, and page server times with 1M calls.

* Live: the real listener takes 7,500 events/s from a fake Asterisk (a process of its own) while
  50 pages hold the console's live stream (/console/live, with a session cookie) from another
  process; for each call change, the delay from its first AMI event reaching the listener to
  the change reaching each page (p50, p99). The pages are SSE clients, not browsers: a real
  page adds its own drawing (about a millisecond) on top.
* Pages: every console page through the real app (session cookie, database, template) with 1M
  calls: the statistics benchmark's SQLite file (built once, reused: see benchmarks.stats) and
  a PostgreSQL database of the same shape (cc_bench_console, built once).

    python -m benchmarks console
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from benchmarks import ami, stats, stats_data
from callcenter.ami.fake_server import Chunk
from callcenter.ami.runtime import AmiRuntime
from callcenter.ami.store import Batch
from callcenter.app import create_app
from callcenter.console import web
from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.live import InProcessBus
from callcenter.models import Call, Caller, Role, User
from callcenter.settings import FastAgiSettings, Settings
from callcenter.users.security import hash_password

PAGES = 50
RATE = 7500
SECONDS = 8.0
PASSWORD = "bench-password-112"
PER_PAGE = 20
RUNS = 3
_MESSAGE = re.compile(r'"uniqueid": "([^"]+)".*?"outcome": "([a-z_]+)"')


def _watch(base: str, cookie: str, pages: int, seconds: float, out: Any, ready: Any) -> None:
    """``pages`` live streams; puts [{(uniqueid, outcome): first seen (wall clock)}] per page."""
    import httpx2

    async def page(seen: dict[tuple[str, str], float], opened: asyncio.Event) -> None:
        headers = {"Cookie": f"{web.SESSION_COOKIE}={cookie}"}
        async with (
            httpx2.AsyncClient(base_url=base, headers=headers, timeout=None) as client,
            client.stream("GET", "/console/live") as response,
        ):
            opened.set()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    now = time.time()
                    match = _MESSAGE.search(line)
                    if match:
                        seen.setdefault((match.group(1), match.group(2)), now)

    async def main() -> None:
        seen: list[dict[tuple[str, str], float]] = [{} for _ in range(pages)]
        opened = [asyncio.Event() for _ in range(pages)]
        tasks = [asyncio.create_task(page(s, o)) for s, o in zip(seen, opened, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 60)
        ready.set()
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.put(seen)

    asyncio.run(main())


def _settings(url: str, **changes: Any) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        token_secret=SecretStr("bench-secret-" + "x" * 32),
        fastagi=FastAgiSettings(enabled=False),
        **changes,
    )


def _session_cookie(client: TestClient, username: str) -> str:
    form = client.get("/console/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    client.post(
        "/console/login",
        data={"username": username, "password": PASSWORD, "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    cookie = client.cookies.get(web.SESSION_COOKIE)
    assert cookie, "the benchmark could not log in"
    return str(cookie)


def _add_user(url: str, role: Role, username: str) -> None:
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        if session.scalars(select(User).where(User.username == username)).first() is None:
            session.add(
                User(
                    username=username,
                    password_hash=hash_password(PASSWORD),
                    role=role,
                    failed_logins=0,
                )
            )
    engine.dispose()


def live_latency(frames: list[bytes]) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, changes seen) from event arrival to 50 pages, at RATE events/s."""
    tick = 0.01
    per_tick = int(RATE * tick)
    count = int(RATE * SECONDS)
    chunks = [
        Chunk(b"".join(frames[i : i + per_tick]), at=(i // per_tick) * tick)
        for i in range(0, count, per_tick)
    ]
    with ami.database("sqlite") as url, tempfile.TemporaryDirectory() as spool:
        _add_user(url, Role.operator, "bench-operator")
        arrivals: dict[tuple[str, str], float] = {}

        def committed(batch: Batch) -> None:
            first: dict[str, datetime] = {}
            for event in batch.events:
                uid = event.call_uniqueid
                if uid is not None and uid not in first:
                    first[uid] = event.received_at
            for uid, state in batch.calls.items():
                if uid in first:
                    arrivals.setdefault((uid, state.outcome), first[uid].timestamp())

        bus = InProcessBus(queue_size=100_000)
        app = create_app(_settings(url))
        app.state.live_bus = bus
        server_port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=server_port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        with TestClient(app) as client:
            cookie = _session_cookie(client, "bench-operator")
        spawn = multiprocessing.get_context("spawn")
        out: Any = spawn.Queue()
        ready = spawn.Event()
        watcher = spawn.Process(
            target=_watch,
            args=(f"http://127.0.0.1:{server_port}", cookie, PAGES, SECONDS + 6, out, ready),
            daemon=True,
        )
        watcher.start()
        assert ready.wait(90), "the pages did not connect"
        with ami.asterisk_process([chunks], realtime=True) as pbx_port:
            settings = _settings(
                url,
                ami=ami.listener_settings(pbx_port).model_copy(update={"spool_dir": Path(spool)}),
            )
            runtime = AmiRuntime(settings, bus=bus, port=pbx_port, stop_at_eof=True)
            runtime.listener.on_stored = committed
            runtime.start()
            runtime.wait()
            runtime.listener.stop()
            runtime.engine.dispose()
        seen = out.get(timeout=120)
        watcher.join(30)
        server.should_exit = True
        server.force_exit = True
        thread.join(10)
    delays = sorted(
        (when - arrivals[key]) * 1000
        for page in seen
        for key, when in page.items()
        if key in arrivals
    )
    assert delays, "no change reached the pages"
    return delays[len(delays) // 2], delays[int(len(delays) * 0.99)], len(delays)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# The callers of the bench calls, linked as the listener links them, so that a screen pop shows
# a caller's history (the statistics loader writes calls only). Built once, in SQL.
_CALLERS = """
INSERT INTO callers (number_key, e164, raw_last, status, call_count, emergency_count,
  prank_count, non_emergency_count, first_seen_at, last_seen_at)
SELECT caller_e164, caller_e164, caller_e164, 'valid', count(*),
  sum(CASE WHEN classification = 'emergency' THEN 1 ELSE 0 END),
  sum(CASE WHEN classification = 'prank' THEN 1 ELSE 0 END),
  sum(CASE WHEN classification = 'non_emergency' THEN 1 ELSE 0 END),
  min(started_at), max(started_at)
FROM calls WHERE caller_e164 IS NOT NULL GROUP BY caller_e164
"""
_LINK = """
UPDATE calls SET caller_key_id = (SELECT id FROM callers WHERE number_key = calls.caller_e164)
WHERE caller_e164 IS NOT NULL
"""


def _link_callers(url: str) -> int:
    """Callers and calls.caller_key_id filled in once; the latest call of the busiest caller."""
    engine = make_engine(url)
    with engine.begin() as connection:
        if connection.scalar(select(func.count()).select_from(Caller)) == 0:
            print("  linking callers to their calls (once) ...", flush=True)
            connection.execute(text(_CALLERS))
            connection.execute(text(_LINK))
        busiest = connection.scalars(
            select(Caller.id).order_by(Caller.call_count.desc()).limit(1)
        ).one()
        call_id: int = connection.scalars(
            select(Call.id)
            .where(Call.caller_key_id == busiest)
            .order_by(Call.started_at.desc())
            .limit(1)
        ).one()
    engine.dispose()
    return call_id


PG_DATABASE = "cc_bench_console"
PG_CALLS = 1_000_000
# The bench calls end on 30 September 2025 (local): ranges that end there hold calls; the
# default range (the 7 days before the real today) is empty.
LAST_DAY = "2025-09-30"
RANGES = [
    ("supervisor, default", ""),
    ("supervisor, one day", f"?from={LAST_DAY}&to={LAST_DAY}"),
    ("supervisor, a month", f"?from=2025-09-01&to={LAST_DAY}"),
    ("supervisor, 5 months", f"?from=2025-05-01&to={LAST_DAY}"),
    ("supervisor, a year", f"?from=2024-10-01&to={LAST_DAY}"),
]


def _sqlite_url() -> str:
    stats.SQLITE_PATH.parent.mkdir(exist_ok=True)
    url = f"sqlite:///{stats.SQLITE_PATH}"

    def load(user_id: int, agency_ids: list[int]) -> None:
        stats_data.load_sqlite(
            str(stats.SQLITE_PATH),
            n=stats.SQLITE_CALLS,
            user_id=user_id,
            first_agency=agency_ids[0],
            agencies=len(agency_ids),
        )

    stats._prepare(url, stats.SQLITE_CALLS, load)
    return url


def _postgres_url() -> str:
    """A database of its own (not the statistics benchmark's 10M), 1M calls like SQLite's."""
    admin = make_engine(stats.ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": PG_DATABASE}
        ):
            connection.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    admin.dispose()
    url = make_url(stats.ADMIN_URL).set(database=PG_DATABASE).render_as_string(hide_password=False)

    def load(user_id: int, agency_ids: list[int]) -> None:
        engine = make_engine(url)
        with engine.begin() as connection:
            stats_data.load_postgres(
                connection,
                n=PG_CALLS,
                user_id=user_id,
                agencies=agency_ids,
                districts=[d.name for d in Settings().districts],
            )
        engine.dispose()

    stats._prepare(url, PG_CALLS, load)
    return url


def page_times(databases: tuple[str, ...] = ("sqlite", "postgresql")) -> None:
    """p50/p95 server time of each console page with 1M calls, on SQLite and PostgreSQL."""
    for database in databases:
        url = _sqlite_url() if database == "sqlite" else _postgres_url()
        _add_user(url, Role.admin, "bench-console-admin")
        busiest_call = _link_callers(url)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            call_id = session.scalars(select(Call.id).order_by(Call.id.desc()).limit(1)).one()
        if database == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))  # after linking the callers
        engine.dispose()
        paths = [
            ("board", "/console/"),
            ("board.json", "/console/board.json"),
            ("call (screen pop)", f"/console/calls/{call_id}"),
            ("call, busiest caller", f"/console/calls/{busiest_call}"),
            ("call-backs", "/console/callbacks"),
            *((name, f"/console/supervisor{query}") for name, query in RANGES),
            ("monthly recap", "/console/supervisor/recap?month=2025-09"),
            ("admin", "/console/admin"),
        ]
        with TestClient(create_app(_settings(url))) as client:
            _session_cookie(client, "bench-console-admin")
            title = f"page (1M calls, {'SQLite' if database == 'sqlite' else 'PostgreSQL'})"
            print(f"  {title:<28}{'p50 ms':>9}{'p95 ms':>9}")
            for name, path in paths:
                p50s, p95s = [], []
                for _ in range(RUNS):
                    times = []
                    for _ in range(PER_PAGE):
                        started = time.perf_counter()
                        response = client.get(path)
                        times.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, (path, response.status_code)
                    times.sort()
                    p50s.append(statistics.median(times))
                    p95s.append(times[int(0.95 * len(times)) - 1])
                print(f"  {name:<28}{statistics.median(p50s):>9.1f}{statistics.median(p95s):>9.1f}")


def main() -> None:
    frames = ami.synthetic_stream(int(RATE * SECONDS))
    p50, p99, n = live_latency(frames)
    print(
        f"  live: {RATE:,} events/s for {SECONDS:.0f} s, {PAGES} pages: event arrival -> page "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms ({n:,} changes seen)"
    )
    page_times()
