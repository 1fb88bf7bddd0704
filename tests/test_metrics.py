"""/metrics: Prometheus text on a port of its own, with HTTP, login, call and AMI figures."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from callcenter import metrics
from callcenter.ami.fake_server import FakeAsterisk
from callcenter.ami.runtime import AmiRuntime
from callcenter.app import create_app
from callcenter.db import make_engine, utcnow
from callcenter.models import Outcome
from callcenter.settings import MetricsSettings, Settings
from tests.ami.helpers import ami_settings, recording_plan
from tests.builders import make_call, make_user
from tests.conftest import TRACES

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_served_on_their_own_port_only(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    now = utcnow()
    with session_factory.begin() as session:
        make_user(session, username="andi")
        make_call(session, pbx="pbx-a", started_at=now - timedelta(minutes=30))
        make_call(session, pbx="pbx-a", started_at=now - timedelta(hours=2))
        make_call(session, pbx="pbx-a", started_at=now - timedelta(days=3))  # outside 24 h
        make_call(session, pbx="pbx-a", outcome=Outcome.queued, started_at=now)
    settings = settings.model_copy(update={"metrics": MetricsSettings(enabled=True, port=0)})
    with TestClient(create_app(settings)) as client:
        port = client.app.state.metrics.port  # type: ignore[attr-defined]
        before = scrape(port)
        assert client.get("/healthz").status_code == 200
        for _ in range(2):
            refused = client.post("/api/v1/auth/token", data={"username": "andi", "password": "x"})
            assert refused.status_code == 401
        response = client.get("/api/v1/calls/999999")
        assert client.get("/metrics").status_code == 404  # not on the API's port
        after = scrape(port)

    assert response.headers["x-request-id"]
    requests = "siaga112_http_requests_total"
    assert value(after, requests, route="/healthz", method="GET", status="200") == (
        value(before, requests, route="/healthz", method="GET", status="200") + 1
    )
    assert value(after, requests, route="/api/v1/calls/{call_id}", method="GET", status="401") == (
        value(before, requests, route="/api/v1/calls/{call_id}", method="GET", status="401") + 1
    )
    assert value(after, requests, route="<unmatched>", method="GET", status="404") >= 1
    assert value(after, "siaga112_login_failures_total") == (
        value(before, "siaga112_login_failures_total") + 2
    )
    latency = "siaga112_http_request_duration_seconds_count"
    assert value(after, latency, route="/healthz", method="GET") >= 1
    assert value(after, "siaga112_calls_last_24h", pbx="pbx-a", outcome="answered") == 2
    assert value(after, "siaga112_calls_in_progress", pbx="pbx-a", outcome="queued") == 1
    assert value(after, "siaga112_last_call_started_timestamp_seconds", pbx="pbx-a") == (
        pytest.approx(now.timestamp(), abs=1)
    )
    assert value(after, "siaga112_database_up") == 1
    # make_call answers 6 + 3 s after the call reached the PBX.
    assert value(after, "siaga112_calls_answered_last_hour", pbx="pbx-a") == 1
    within = "siaga112_calls_answered_within_seconds_last_hour"
    assert value(after, within, pbx="pbx-a", le="10") == 1
    assert value(after, within, pbx="pbx-a", le="120") == 1
    # The port is closed with the app, and its database figures are no longer collected.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_taken_port_leaves_the_api_serving_without_metrics(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings.model_copy(update={"metrics": MetricsSettings(enabled=True, port=port)})
        with TestClient(create_app(settings)) as client:
            assert client.app.state.metrics is None  # type: ignore[attr-defined]
            assert client.get("/healthz").status_code == 200


def test_the_database_figures_say_when_it_is_down() -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    families = list(metrics.DatabaseCollector(engine).collect())
    engine.dispose()
    assert [(f.name, f.samples[0].value) for f in families] == [("siaga112_database_up", 0.0)]


def test_the_listener_figures_follow_a_replayed_trace(settings: Settings, tmp_path: Path) -> None:
    with FakeAsterisk(recording_plan(TRACES / "01-answered")) as fake:
        # Histograms live as long as the process: a PBX name of this test's own.
        pbx = f"metrics-{uuid.uuid4().hex[:8]}"
        ami = ami_settings(fake.port, pbx_name=pbx, spool_dir=tmp_path / "spool")
        runtime = AmiRuntime(settings.model_copy(update={"ami": ami}), stop_at_eof=True)
        runtime.start()
        assert runtime.wait()
        runtime.close()
    counters = runtime.listener.counters
    labels = {"pbx": pbx}
    stored = REGISTRY.get_sample_value("siaga112_ami_stored_events_total", labels)
    assert stored == counters.stored_events > 0
    assert REGISTRY.get_sample_value("siaga112_ami_connections_total", labels) == 1
    assert REGISTRY.get_sample_value("siaga112_ami_frames_total", labels) == counters.frames
    assert REGISTRY.get_sample_value("siaga112_ami_up", labels) == 0  # the stream ended
    assert REGISTRY.get_sample_value("siaga112_ami_spool_batches", labels) == 0
    batches = REGISTRY.get_sample_value("siaga112_ami_batch_events_count", labels)
    assert batches == counters.batches
    assert REGISTRY.get_sample_value("siaga112_ami_batch_events_sum", labels) == stored
    latency = REGISTRY.get_sample_value("siaga112_ami_event_commit_latency_seconds_count", labels)
    assert latency == counters.batches


def test_ivr_and_notification_figures(
    settings: Settings, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """FastAGI slots and sessions (served, skipped), IVR look-up misses and the agencies'
    notification queue, as a scrape shows them."""
    from callcenter.ivr.models import IvrRun
    from callcenter.ivr.server import FastAgiServer
    from callcenter.metrics import watch_fastagi
    from callcenter.settings import FastAgiSettings
    from tests.ivr.fake_asterisk import Scenario, session
    from tests.ivr.test_fastagi_server import converse

    now = utcnow()
    with session_factory.begin() as db:
        for n, (outcome, lookup) in enumerate(
            [("completed", "found"), ("completed", "miss"), ("skipped_busy", None)]
        ):
            db.add(
                IvrRun(
                    pbx="p",
                    uniqueid=f"9.{n}",
                    channel="",
                    caller_id_raw="",
                    outcome=outcome,
                    lookup_status=lookup,
                    prompts_failed=0,
                    started_at=now,
                )
            )
    fast = settings.model_copy(
        update={"fastagi": FastAgiSettings(host="127.0.0.1", port=0, max_sessions=3)}
    )
    server = FastAgiServer(fast)
    server.start()
    watch_fastagi(server)
    recorded = session("05-hangup-in-ivr", "fastagi").with_uniqueid("9.99")
    converse(server.port, Scenario(recorded, fastagi=True))
    settings = settings.model_copy(update={"metrics": MetricsSettings(enabled=True, port=0)})
    try:
        with TestClient(create_app(settings)) as client:
            scraped = scrape(client.app.state.metrics.port)  # type: ignore[attr-defined]
    finally:
        server.stop(grace=0)

    port = str(server.port)
    assert value(scraped, "siaga112_fastagi_max_sessions", port=port) == 3
    assert value(scraped, "siaga112_fastagi_sessions_in_use", port=port) == 0
    assert value(scraped, "siaga112_fastagi_sessions_total", port=port, result="served") == 1
    assert value(scraped, "siaga112_fastagi_sessions_total", port=port, result="skipped") == 0
    assert value(scraped, "siaga112_ivr_runs", outcome="completed", lookup="miss") == 1
    assert value(scraped, "siaga112_ivr_runs", outcome="skipped_busy", lookup="none") == 1
    # 9.99 was served above and recorded too.
    assert value(scraped, "siaga112_ivr_runs", outcome="completed", lookup="found") == 2
