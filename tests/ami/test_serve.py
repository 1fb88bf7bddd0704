"""`serve` wiring: the API keeps serving while Asterisk is unreachable, and /readyz says why."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from callcenter.ami.fake_server import FakeAsterisk
from callcenter.ami.runtime import AmiRuntime
from callcenter.app import create_app
from callcenter.settings import Settings
from tests.ami.helpers import wait_for


def test_api_serves_and_readyz_explains_an_unreachable_asterisk(
    settings: Settings, tmp_path: Path
) -> None:
    with FakeAsterisk([[]]) as fake:
        port = fake.port  # closed once the with-block ends: nothing listens there
    ami = settings.ami.model_copy(
        update={
            "enabled": True,
            "port": port,
            "secret": SecretStr("x"),
            "spool_dir": tmp_path / "spool",
            "reconnect_min_seconds": 0.05,
        }
    )
    app = create_app(settings)
    runtime = AmiRuntime(settings.model_copy(update={"ami": ami}))
    runtime.attach(app)
    runtime.start()
    try:
        wait_for(lambda: "cannot reach" in runtime.listener.readiness(), "a failed attempt")
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert "cannot reach Asterisk" in ready.json()["checks"]["ami"]
            assert ready.json()["checks"]["database"] == "ok"
    finally:
        runtime.stop()
