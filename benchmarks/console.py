"""Console speed: live updates under an AMI surge, and page server times with 1M calls.

* Live: 50 pages on the console's live stream while the listener takes 7,500 events/s, from
  the first AMI event of a call change to that change at each page (benchmarks.console_live;
  that part alone: `make bench PARTS=console_live`).
* Pages: every console page through the real app (session cookie, database, template) on the
  statistics benchmark's SQLite file of 1M calls (built once, reused: see benchmarks.stats).

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
from sqlalchemy import select

from benchmarks import stats, stats_data
from callcenter.app import create_app
from callcenter.console import web
from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.models import Call, Role, User
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


def page_times() -> None:
    """p50/p95 server time of each console page on the 1M-call SQLite file."""
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
    _add_user(url, Role.admin, "bench-console-admin")
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        call_id = session.scalars(select(Call.id).order_by(Call.id.desc()).limit(1)).one()
    engine.dispose()
    season = "from=2025-05-01&to=2025-09-30"
    paths = [
        ("board", "/console/"),
        ("board.json", "/console/board.json"),
        ("call (screen pop)", f"/console/calls/{call_id}"),
        ("call-backs", "/console/callbacks"),
        ("supervisor, 7 days", "/console/supervisor"),
        ("supervisor, 5 months", f"/console/supervisor?{season}"),
        ("admin", "/console/admin"),
    ]
    with TestClient(create_app(_settings(url))) as client:
        _session_cookie(client, "bench-console-admin")
        print(f"  {'page (1M calls, SQLite)':<24}{'p50 ms':>9}{'p95 ms':>9}")
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
            print(f"  {name:<24}{statistics.median(p50s):>9.1f}{statistics.median(p95s):>9.1f}")


def main() -> None:
    from benchmarks import console_live  # it imports this module's helpers

    console_live.main()
    page_times()
