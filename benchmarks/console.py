"""Console speed: live updates under an AMI surge, and page server times with 1M calls.

* Live: 50 pages on the console's live stream while the listener takes 7,500 events/s, from
  the first AMI event of a call change to that change at each page (benchmarks.console_live;
  that part alone: `make bench PARTS=console_live`).
* Pages: every console page through the real app (session cookie, database, template) with 1M
  calls: the statistics benchmark's SQLite file (built once, reused: see benchmarks.stats) and
  a PostgreSQL database of the same shape (cc_bench_console, built once).

    python -m benchmarks console
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import httpx2
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text

from benchmarks import stats, stats_data
from callcenter.app import create_app
from callcenter.console import web
from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.models import Call, Caller, Role, User
from callcenter.settings import FastAgiSettings, Settings
from callcenter.users.security import hash_password

PASSWORD = "bench-password-112"
PER_PAGE = 20
RUNS = 3


def _settings(url: str, **changes: Any) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        token_secret=SecretStr("bench-secret-" + "x" * 32),
        fastagi=FastAgiSettings(enabled=False),
        **changes,
    )


def _session_cookie(client: TestClient | httpx2.Client, username: str) -> str:
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
    return stats.postgres_database(PG_DATABASE, PG_CALLS)


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
    from benchmarks import console_live  # it imports this module's helpers

    console_live.main()
    page_times()
