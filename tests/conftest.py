"""Shared fixtures: real databases (a SQLite file and the PostgreSQL server), migrated by Alembic.

PostgreSQL is required, never skipped: the suite creates a database of its own on the server at
CALLCENTER_TEST_POSTGRES_URL (default: the local server's `test` database as admin connection).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import callcenter.all_models  # noqa: F401
from callcenter.app import create_app
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.migrate import upgrade
from callcenter.models import Base, Role
from callcenter.settings import AmiSettings, FastAgiSettings, Settings
from tests import log_scan
from tests.builders import PASSWORD, make_user

LoginFn = Callable[..., dict[str, str]]

# Property tests: bounded in `make test`; `make fuzz` runs HYPOTHESIS_PROFILE=fuzz with its
# bounds scaled up. The example database stays off: every run is a fresh search.
hypothesis.settings.register_profile("ci", database=None, deadline=None)
hypothesis.settings.register_profile(
    "fuzz",
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

POSTGRES_ADMIN_URL = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
TRACES = Path(os.environ.get("CALLCENTER_TRACES", SHARED / "asterisk-traces"))


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_logs() -> Iterator[log_scan.Recorder]:
    """Every line the suite logs, as production would write it: none may hold a secret."""
    with log_scan.scanning() as recorder:
        yield recorder
    leaks = log_scan.findings(recorder.lines)
    assert not leaks, f"{len(leaks)} log line(s) with a secret, e.g. {leaks[0]}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating per test would be slow)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@contextmanager
def new_postgres_database(prefix: str = "cc_test") -> Iterator[str]:
    """An empty database of its own on the PostgreSQL server, dropped afterwards."""
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    with new_postgres_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def _empty_postgres(engine: Engine) -> None:
    """Every table emptied, every sequence restarted: as TRUNCATE ... RESTART IDENTITY CASCADE
    of all tables would, which costs ~0.4 s (each truncated table gets new files on disk,
    and CASCADE takes in every table that refers to one). A test fills a few tables: those
    are emptied with DELETE (children first), or TRUNCATE where a trigger refuses DELETE."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        used = set(
            connection.scalars(
                text(
                    " UNION ALL ".join(
                        f"SELECT '{table}' WHERE EXISTS (SELECT FROM {table})" for table in tables
                    )
                )
            )
        )
        guarded = set(
            connection.scalars(
                text(
                    "SELECT DISTINCT tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
                )
            )
        )
        if used & guarded:
            connection.execute(text(f"TRUNCATE {', '.join(sorted(used & guarded))} CASCADE"))
        for table in tables:
            if table in used - guarded:
                connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(
            text(
                "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)"
                " FROM pg_sequences"
            )
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own, not migrated: for tests that walk the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    with new_postgres_database("cc_migrate") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, then the PostgreSQL server (same tests)."""
    if request.param == "sqlite":
        path = tmp_path / "callcenter.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    engine = make_engine(url)
    _empty_postgres(engine)
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path / "data",
        token_secret=SecretStr("test-secret-" + "x" * 32),
        ami=AmiSettings(enabled=False),
        fastagi=FastAgiSettings(enabled=False),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real app, in-process, on the test database."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def login(client: TestClient, session_factory: sessionmaker[Session]) -> LoginFn:
    """login(role) -> Authorization headers of a new user with that role, via the token route."""

    def _login(role: Role = Role.operator, **user_fields: Any) -> dict[str, str]:
        with session_factory.begin() as session:
            user = make_user(session, role=role, **user_fields)
            username = user.username
        response = client.post(
            "/api/v1/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return _login
