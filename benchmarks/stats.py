"""Statistics speed: every stats endpoint over a five-month range, 10M calls in PostgreSQL and
1M in SQLite. Builds the data sets once (reused when present) and prints p50/p95 per endpoint,
the medians of several runs, measured through the real app (auth, rollup refresh, JSON).

    python -m benchmarks.stats
Environment: CALLCENTER_BENCH_POSTGRES_ADMIN_URL (a server database to connect to for CREATE
DATABASE), CALLCENTER_BENCH_PG_CALLS / CALLCENTER_BENCH_SQLITE_CALLS (sizes).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from benchmarks import stats_data
from callcenter.app import create_app
from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.db.migrate import upgrade
from callcenter.incidents import agencies
from callcenter.incidents.models import Agency
from callcenter.models import Call, Role, User
from callcenter.settings import AmiSettings, FastAgiSettings, Settings
from callcenter.stats import rollup
from callcenter.users.security import hash_password

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "CALLCENTER_BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_DATABASE = "cc_bench_stats"
PG_CALLS = int(os.environ.get("CALLCENTER_BENCH_PG_CALLS", 10_000_000))
SQLITE_CALLS = int(os.environ.get("CALLCENTER_BENCH_SQLITE_CALLS", 1_000_000))
SQLITE_PATH = ROOT / ".bench" / "stats.db"
PASSWORD = "bench-password-112"
SEASON = {"from": "2025-05-01", "to": "2025-09-30"}
REQUESTS = [
    ("summary", "/api/v1/stats/summary", SEASON),
    ("answer-times", "/api/v1/stats/answer-times", SEASON),
    ("timeseries day", "/api/v1/stats/timeseries", {**SEASON, "interval": "day"}),
    ("timeseries hour", "/api/v1/stats/timeseries", {**SEASON, "interval": "hour"}),
    ("timeseries month", "/api/v1/stats/timeseries", {**SEASON, "interval": "month"}),
    ("operators", "/api/v1/stats/operators", SEASON),
    ("callers", "/api/v1/stats/callers", SEASON),
    ("regions", "/api/v1/stats/regions", SEASON),
    ("summary csv", "/api/v1/stats/summary", {**SEASON, "format": "csv"}),
    ("monthly report", "/api/v1/reports/monthly", {"month": "2025-09"}),
    ("monthly report html", "/api/v1/reports/monthly", {"month": "2025-09", "format": "html"}),
]
RUNS = 5
PER_RUN = 20


def _prepare(url: str, n: int, load: Callable[[int, list[int]], None]) -> None:
    """Migrate, seed, and (re)load the calls unless the database already has n of them."""
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        agencies.seed(session, Settings().agencies)
        if session.scalars(select(User).where(User.username == "bench-admin")).first() is None:
            session.add(
                User(
                    username="bench-admin",
                    password_hash=hash_password(PASSWORD),
                    role=Role.admin,
                    failed_logins=0,
                )
            )
    with factory() as session:
        have = session.scalar(select(func.count()).select_from(Call))
        user_id = session.scalars(select(User.id).where(User.username == "bench-admin")).one()
        agency_ids = list(session.scalars(select(Agency.id).order_by(Agency.id)))
    if have != n:
        print(f"  loading {n:,} calls (found {have:,}) ...", flush=True)
        started = time.perf_counter()
        with engine.begin() as connection:
            for table in ("incident_assignment_changes", "incident_assignments", "incidents"):
                connection.execute(text(f"DELETE FROM {table}"))
            for table in ("callback_attempts", "call_events", "classification_changes", "calls"):
                connection.execute(text(f"DELETE FROM {table}"))
            connection.execute(text("DELETE FROM stats_rollup_state"))
        load(user_id, agency_ids)
        print(f"  loaded in {time.perf_counter() - started:.0f} s", flush=True)
    with transaction(factory) as session:
        started = time.perf_counter()
        days = rollup.refresh(session, timezone="Asia/Makassar", safety=timedelta(minutes=10))
        if days:
            print(f"  rollups: {days} days built in {time.perf_counter() - started:.1f} s")
    if days and engine.dialect.name == "postgresql":
        # What autovacuum would soon do: visibility maps let index-only scans skip the heap.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def postgres_database(name: str, calls: int) -> str:
    """The URL of database ``name`` on the benchmark server, holding ``calls`` generated calls
    (created and loaded the first time, reused after)."""
    admin = make_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def load(user_id: int, agency_ids: list[int]) -> None:
        engine = make_engine(url)
        with engine.begin() as connection:
            stats_data.load_postgres(
                connection,
                n=calls,
                user_id=user_id,
                agencies=agency_ids,
                districts=[d.name for d in Settings().districts],
            )
        engine.dispose()

    _prepare(url, calls, load)
    return url


def _measure(url: str) -> None:
    settings = Settings(
        environment="test",
        database_url=url,
        token_secret=SecretStr("bench-secret-" + "x" * 32),
        ami=AmiSettings(enabled=False),
        fastagi=FastAgiSettings(enabled=False),
    )
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "bench-admin", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        print(f"  {'endpoint':<22}{'p50 ms':>9}{'p95 ms':>9}")
        for name, path, params in REQUESTS:
            p50s, p95s = [], []
            for _ in range(RUNS):
                times = []
                for _ in range(PER_RUN):
                    started = time.perf_counter()
                    response = client.get(path, params=params, headers=headers)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
                times.sort()
                p50s.append(statistics.median(times))
                p95s.append(times[int(0.95 * len(times)) - 1])
            print(f"  {name:<22}{statistics.median(p50s):>9.1f}{statistics.median(p95s):>9.1f}")
        _after_a_change(client, headers, url)


def _after_a_change(client: TestClient, headers: dict[str, str], url: str) -> None:
    """One call re-tagged (as the calls service does): the next summary rebuilds one day."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    timings = []
    for n in range(5):
        with transaction(factory) as session:
            call_id = session.scalars(
                select(Call.id).where(Call.started_at >= datetime(2025, 7, 1, tzinfo=UTC)).limit(1)
            ).one()
            session.execute(
                update(Call)
                .where(Call.id == call_id)
                .values(
                    classification="prank" if n % 2 else "non_emergency",
                    version=Call.version + 1,
                    updated_at=datetime.now(UTC),
                )
            )
        started = time.perf_counter()
        response = client.get("/api/v1/stats/summary", params=SEASON, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    print(f"  {'summary after a change':<22}{statistics.median(timings):>9.1f}  (median of 5)")
    engine.dispose()


def main() -> None:
    print(f"PostgreSQL, {PG_CALLS:,} calls (database {PG_DATABASE}):")
    pg_url = postgres_database(PG_DATABASE, PG_CALLS)
    _measure(pg_url)

    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    sqlite_url = f"sqlite:///{SQLITE_PATH}"
    print(f"SQLite, {SQLITE_CALLS:,} calls ({SQLITE_PATH.relative_to(ROOT)}):")

    def load_sqlite(user_id: int, agency_ids: list[int]) -> None:
        stats_data.load_sqlite(
            str(SQLITE_PATH),
            n=SQLITE_CALLS,
            user_id=user_id,
            first_agency=agency_ids[0],
            agencies=len(agency_ids),
        )

    _prepare(sqlite_url, SQLITE_CALLS, load_sqlite)
    _measure(sqlite_url)


if __name__ == "__main__":
    main()
