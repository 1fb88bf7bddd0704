"""`callcenter serve` runs the FastAGI server beside the API, and it never outlives serve."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ivr.conftest import CALLCENTER
from tests.ivr.fake_asterisk import Scenario, expected_commands, session
from tests.ivr.test_fastagi_server import converse

FAST = session("05-hangup-in-ivr", "fastagi")


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    fastagi_port: int
    log: list[str]
    drain: threading.Thread

    def output_until_everything_exits(self) -> str:
        """stderr reaches EOF only when serve and the FastAGI server have both exited."""
        self.drain.join()
        return "".join(self.log)


@pytest.fixture
def serve(environ: dict[str, str]) -> Iterator[Serve]:
    environ = {**environ, "CALLCENTER_FASTAGI__PORT": "0", "CALLCENTER_AMI__ENABLED": "false"}
    process = subprocess.Popen(
        [CALLCENTER, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"],
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert process.stderr is not None
    stderr = process.stderr
    log: list[str] = []
    port = 0
    api_up = False
    for raw in stderr:
        log.append(raw.decode("utf-8", "replace"))
        if match := re.search(r"FastAGI server listening on 127\.0\.0\.1:(\d+)", log[-1]):
            port = int(match[1])
        api_up = api_up or "Uvicorn running on" in log[-1]
        if port and api_up:
            break
    assert port, "".join(log)
    assert api_up, "".join(log)
    drain = threading.Thread(
        target=lambda: log.extend(line.decode("utf-8", "replace") for line in stderr)
    )
    drain.start()
    yield Serve(process, port, log, drain)
    if process.poll() is None:
        process.kill()
    process.wait()
    drain.join()
    stderr.close()


def test_serve_answers_fastagi_and_stops_it_on_sigterm(serve: Serve) -> None:
    sent = converse(serve.fastagi_port, Scenario(FAST, fastagi=True))
    serve.process.send_signal(signal.SIGTERM)

    # uvicorn re-raises the SIGTERM once it has shut down, so serve may end "killed" by it.
    assert serve.process.wait(timeout=60) in {0, -signal.SIGTERM}
    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert "FastAGI server stopped" in serve.output_until_everything_exits()


def test_fastagi_server_does_not_outlive_a_killed_serve(serve: Serve) -> None:
    serve.process.kill()
    serve.process.wait()

    log = serve.output_until_everything_exits()

    assert "the process that started the FastAGI server is gone" in log
    assert "FastAGI server stopped" in log
