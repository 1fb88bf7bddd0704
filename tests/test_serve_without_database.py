"""`callcenter serve` starts while its PostgreSQL is unreachable (issue 14, item 3): a PBX does
not wait for our database. It serves, /readyz says why it is not ready, and it stops cleanly."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx2 as httpx

from tests.ivr.harness import CALLCENTER, ivr_environ

API_UP = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_and_says_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere"
    environ = {
        **ivr_environ(url, tmp_path),
        "CALLCENTER_FASTAGI__PORT": "0",
        "CALLCENTER_AMI__PORT": str(closed_port()),
        "CALLCENTER_AMI__SPOOL_DIR": str(tmp_path / "spool"),
    }
    process = subprocess.Popen(
        [CALLCENTER, "serve", "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert process.stderr is not None
    stderr = process.stderr
    log: list[str] = []
    drain = threading.Thread(
        target=lambda: log.extend(line.decode("utf-8", "replace") for line in stderr), daemon=True
    )
    drain.start()
    try:
        deadline = time.monotonic() + 60
        port = 0
        while not port and time.monotonic() < deadline and process.poll() is None:
            port = next((int(m[1]) for line in list(log) if (m := API_UP.search(line))), 0)
            time.sleep(0.05)
        assert port, "".join(log)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/healthz", timeout=10)
        ready = httpx.get(f"{base}/readyz", timeout=10)
        calls = httpx.get(f"{base}/api/v1/calls", timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        drain.join(timeout=10)
        stderr.close()

    text = "".join(log)
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"].startswith("unreachable")
    assert calls.status_code in {401, 503}  # no token, or the database: never a 500
    assert "the database is unreachable: starting without migrating" in text
    assert "Traceback" not in text, [line for line in log if "Traceback" in line][:2]
    assert code == 0
