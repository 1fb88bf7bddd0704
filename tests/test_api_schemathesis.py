"""schemathesis over every operation of the running app, every check on: no server error, no
response the OpenAPI document does not describe (issue 14). Bounded, for `make test`; the live
stream (which never ends) is tested in tests/ami/test_live.py."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from callcenter.app import create_app
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.migrate import upgrade
from callcenter.models import Role
from callcenter.settings import AmiSettings, FastAgiSettings, Settings
from tests.builders import PASSWORD, make_call, make_user
from tests.conftest import new_postgres_database

# `make test`: a bounded run (each operation is a test of its own, so xdist workers share them);
# `make fuzz` sets more (CALLCENTER_API_CASES=1000).
CASES_PER_OPERATION = int(os.environ.get("CALLCENTER_API_CASES", "250"))
# SQLite in `make test` (well under two minutes); `make fuzz` runs PostgreSQL as well.
DATABASE = os.environ.get("CALLCENTER_API_DATABASE", "sqlite")
CROSS_FIELD = re.compile(r"^/api/v1/(stats|reports)/")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("schemathesis")
    with ExitStack() as stack:
        if DATABASE == "postgres":
            url = stack.enter_context(new_postgres_database("cc_schemathesis"))
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        else:
            shutil.copy(sqlite_template, folder / "api.db")
            url = f"sqlite:///{folder / 'api.db'}"
        yield from _served(url, folder)


def _served(url: str, folder: Path) -> Iterator[Any]:
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        make_user(session, role=Role.admin, username="admin")
        for _ in range(3):
            make_call(session)
    engine.dispose()
    app = create_app(
        Settings(
            environment="test",
            database_url=url,
            data_dir=folder / "data",
            token_secret=SecretStr("test-secret-" + "x" * 32),
            ami=AmiSettings(enabled=False),
            fastagi=FastAgiSettings(enabled=False),
        )
    )
    with TestClient(app) as client:  # runs the lifespan (engine, write threads)
        token = client.post(
            "/api/v1/auth/token", data={"username": "admin", "password": PASSWORD}
        ).json()["access_token"]
        config = SchemathesisConfig.from_dict(
            {
                "headers": {"Authorization": f"Bearer {token}"},
                "checks": {"enabled": True},
            }
        )
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
        yield schema.exclude(path="/api/v1/live")


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation, read from the app's own document."""
    settings_ = Settings(environment="test", token_secret=SecretStr("x" * 44))
    document = create_app(settings_).openapi()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if path != "/api/v1/live"
    ]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation(api: Any, method: str, path: str) -> None:
    operation = api[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=CASES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(excluded_checks=excluded)

    # from <= to, a span of at most 3,700 days, days from 1900 to 9998: the statistics say
    # so in their descriptions and answer 422; OpenAPI has no way to state them.
    excluded = [positive_data_acceptance] if CROSS_FIELD.search(path) else []

    check()
