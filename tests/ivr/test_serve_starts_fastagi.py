"""`callcenter serve` runs the FastAGI server beside the API, and nothing it starts outlives it.

Stopped at any moment (before, during and after the FastAGI server binds, once ready; SIGTERM
or SIGKILL), no process it started is left and its FastAGI port is free again.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.ivr.fake_asterisk import Scenario, expected_commands, session
from tests.ivr.harness import CALLCENTER, ivr_environ
from tests.ivr.test_fastagi_server import converse

FAST = session("05-hangup-in-ivr", "fastagi")
API_UP = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Whether a new server can listen there (as serve does: SO_REUSEADDR, so a connection
    of the last one still in TIME_WAIT does not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def processes_marked(marker: str) -> list[int]:
    """Every live process whose environment carries the marker (serve and anything it began)."""
    found = []
    needle = f"SIAGA112_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie holds nothing; its parent has not waited yet
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    fastagi_port: int
    marker: str
    log: list[str]
    drain: threading.Thread

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.01)
        raise AssertionError(f"no {pattern!r} in:\n{''.join(self.log)}")

    def output_until_everything_exits(self) -> str:
        self.drain.join(timeout=30)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return "".join(self.log)

    def assert_nothing_left(self) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if not processes_marked(self.marker) and port_is_free(self.fastagi_port):
                return
            time.sleep(0.05)
        assert processes_marked(self.marker) == [], "".join(self.log)
        assert port_is_free(self.fastagi_port), "".join(self.log)


def start_serve(environ: dict[str, str]) -> Serve:
    marker = uuid.uuid4().hex
    fastagi_port = free_port()
    environ = {
        **environ,
        "CALLCENTER_FASTAGI__PORT": str(fastagi_port),
        "CALLCENTER_AMI__ENABLED": "false",
        "SIAGA112_TEST_MARKER": marker,
    }
    process = subprocess.Popen(
        [CALLCENTER, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"],
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert process.stderr is not None
    stderr = process.stderr
    log: list[str] = []
    drain = threading.Thread(
        target=lambda: log.extend(line.decode("utf-8", "replace") for line in stderr),
        daemon=True,
    )
    drain.start()
    return Serve(process, fastagi_port, marker, log, drain)


@pytest.fixture
def serve(environ: dict[str, str]) -> Iterator[Serve]:
    running = start_serve(environ)
    yield running
    if running.process.poll() is None:
        running.process.kill()
    running.process.wait()
    running.output_until_everything_exits()


def test_serve_answers_fastagi_and_stops_on_sigterm(serve: Serve) -> None:
    serve.wait_for(API_UP.pattern)
    sent = converse(serve.fastagi_port, Scenario(FAST, fastagi=True))
    serve.process.send_signal(signal.SIGTERM)

    assert serve.process.wait(timeout=30) == 0
    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert "FastAGI server stopped" in serve.output_until_everything_exits()
    serve.assert_nothing_left()


def test_ready_only_once_fastagi_listens(serve: Serve) -> None:
    api_port = int(serve.wait_for(API_UP.pattern)[1])

    ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=10).json()

    assert ready["checks"]["fastagi"] == "ok"
    with socket.create_connection(("127.0.0.1", serve.fastagi_port), timeout=5):
        pass


@pytest.mark.parametrize(
    "moment",
    [
        "at once",  # before the FastAGI server binds
        "while it starts",  # about when it binds and warms up
        "once it listens",  # FastAGI up, the API not yet
        "once ready",
    ],
)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_stopped_at_any_moment_leaves_nothing_behind(
    environ: dict[str, str], moment: str, signum: signal.Signals
) -> None:
    serve = start_serve(environ)
    try:
        if moment == "while it starts":
            time.sleep(0.4)
        elif moment == "once it listens":
            serve.wait_for("FastAGI server listening")
        elif moment == "once ready":
            serve.wait_for(API_UP.pattern)
        serve.process.send_signal(signum)
        code = serve.process.wait(timeout=30)
    finally:
        if serve.process.poll() is None:
            serve.process.kill()
            serve.process.wait()
        log = serve.output_until_everything_exits()

    if signum == signal.SIGTERM:
        # Before Python installs its handler the default action ends the process (-15).
        assert code in {0, -signal.SIGTERM}, log
        assert "Traceback" not in log
    serve.assert_nothing_left()


def test_sigterm_with_a_live_stream_open_stops_within_seconds(serve: Serve, database_url: str):
    """Found on the real PBX: uvicorn waited for ever on a client holding /api/v1/live."""
    from sqlalchemy.orm import Session

    from callcenter.db import make_engine
    from callcenter.models import Role
    from tests.builders import PASSWORD, make_user

    engine = make_engine(database_url)
    with Session(engine) as db, db.begin():
        username = make_user(db, role=Role.operator).username
    engine.dispose()
    api = f"http://127.0.0.1:{int(serve.wait_for(API_UP.pattern)[1])}"
    token = httpx.post(
        f"{api}/api/v1/auth/token", data={"username": username, "password": PASSWORD}
    ).json()["access_token"]

    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "GET", f"{api}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as stream,
    ):
        first = next(stream.iter_lines())
        assert first.startswith("retry:")
        started = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        assert serve.process.wait(timeout=30) == 0
        stopped_after = time.monotonic() - started

    serve.assert_nothing_left()
    # Not a speed target: a bound that was infinite before (uvicorn never stopped).
    assert stopped_after < 15, serve.output_until_everything_exits()


def test_busy_fastagi_port_is_one_clear_line(tmp_path: Path) -> None:
    """Refused before the database is touched: one database is enough."""
    environ = ivr_environ(f"sqlite:///{tmp_path}/unused.db", tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CALLCENTER, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"],
            env={**environ, "CALLCENTER_FASTAGI__PORT": str(port), "CALLCENTER_AMI__ENABLED": "0"},
            capture_output=True,
            timeout=60,
        )

    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert f"FastAGI server cannot listen on 127.0.0.1:{port}: already in use" in stderr
    assert "Traceback" not in stderr
    assert "Uvicorn running" not in stderr
