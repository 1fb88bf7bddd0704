"""Real receivers for the notification tests: an HTTP server, and helpers to make assignments."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from callcenter.db import utcnow
from callcenter.incidents import agencies, service
from callcenter.incidents.models import Incident
from callcenter.models import Classification, Role
from callcenter.notify.config import AgencyContacts, Channel, NotifySettings, SupervisorContacts
from callcenter.settings import Settings
from tests.builders import make_call, make_user

WEBHOOK_KEY = "webhook-test-key-0123456789"
WEBHOOK_ENV = "SIAGA_TEST_WEBHOOK_KEY"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A real HTTP server on a free port; ``script`` says how to answer each request in turn:
    a status code, or "hang" (answer only after ``hang_seconds``). Then 200 for the rest."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    script: list[int | str] = field(default_factory=list)
    hang_seconds: float = 1.5

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    state: dict[str, HttpReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            box = state["box"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.received.append(Received(self.path, dict(self.headers.items()), body))
            answer = box.script.pop(0) if box.script else 200
            if answer == "hang":
                time.sleep(box.hang_seconds)
                answer = 200
            try:
                self.send_response(int(answer))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting (the timeout under test)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["box"] = HttpReceiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state["box"]
    server.shutdown()
    server.server_close()


class Clock:
    """The worker's clock: real time moved ahead by the test (retries, escalations, no sleep)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def webhook_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(WEBHOOK_ENV, WEBHOOK_KEY)
    return WEBHOOK_KEY


def with_notify(settings: Settings, **changes: Any) -> Settings:
    defaults: dict[str, Any] = {
        "link_secret": "link-secret-for-tests-0123456789",
        "public_base_url": "http://112.test",
        "retry_min_seconds": 10,
        "retry_max_seconds": 600,
        "attempts_per_channel": 3,
        "http_timeout_seconds": 0.5,
        "daily_digest": False,
    }
    notify = NotifySettings(**(defaults | changes))
    return settings.model_copy(update={"notify": notify})


def webhook(url: str) -> Channel:
    return Channel(kind="webhook", to=url, secret_env=WEBHOOK_ENV)


def contacts(*channels: Channel, **extra: Any) -> AgencyContacts:
    return AgencyContacts(channels=list(channels), **extra)


def supervisor(*channels: Channel) -> SupervisorContacts:
    return SupervisorContacts(channels=list(channels))


MakeIncident = Callable[..., int]


@pytest.fixture
def make_incident(session_factory: sessionmaker[Session], settings: Settings) -> MakeIncident:
    """make_incident(agency codes..., caller=..., category=...) -> incident id (committed)."""
    with session_factory.begin() as session:
        agencies.seed(session, settings.agencies)

    def _make(
        *codes: str, caller: str = "081234567890", category: str = "fire", summary: str = ""
    ) -> int:
        with session_factory.begin() as session:
            user = make_user(session, role=Role.operator)
            call = make_call(session, caller=caller, classification=Classification.emergency)
            incident: Incident = service.create_incident(
                session,
                settings=settings,
                user=user,
                call_id=call.id,
                category=category,
                location=service.Location(
                    district="Kota Kefamenanu", village="Benpasi", text="belakang pasar"
                ),
                summary=summary,
                assign=[
                    service.AgencyRequest(code, primary=i == 0)
                    for i, code in enumerate(codes or ("damkar_ttu",))
                ],
            )
            return incident.id

    return _make
