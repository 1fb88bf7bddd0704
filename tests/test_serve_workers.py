"""`callcenter serve --workers N`: several API processes on one port, API only."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import PASSWORD, make_call, make_user

CALLCENTER = str(Path(sys.executable).parent / "callcenter")


def _environ(database_url: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "CALLCENTER_DATABASE_URL": database_url,
        "CALLCENTER_DATA_DIR": str(tmp_path / "data"),
        "CALLCENTER_AMI__ENABLED": "false",
        "CALLCENTER_FASTAGI__ENABLED": "false",
        **overrides,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], dict[str, object]]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.status, dict(reply.headers), json.load(reply)


def test_more_workers_refuse_to_run_the_listener_in_each(database_url: str, tmp_path: Path) -> None:
    environ = _environ(database_url, tmp_path, CALLCENTER_AMI__ENABLED="true")
    result = subprocess.run(
        [CALLCENTER, "serve", "--workers", "2", "--no-migrate"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "--workers > 1 serves the API only" in result.stderr
    assert "callcenter ami" in result.stderr


def test_two_workers_serve_the_api_and_classify(
    database_url: str, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        username = make_user(session).username
        call_id = make_call(session).id
    port = _free_port()
    process = subprocess.Popen(
        [CALLCENTER, "serve", "--workers", "2", "--port", str(port), "--no-migrate"],
        env=_environ(database_url, tmp_path),
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert _request(f"{base}/readyz")[0] == 200
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("serve --workers 2 did not start")
                time.sleep(0.2)
        form = urllib.parse.urlencode({"username": username, "password": PASSWORD}).encode()
        token = _request(f"{base}/api/v1/auth/token", data=form)[2]["access_token"]
        status, headers, body = _request(
            f"{base}/api/v1/calls/{call_id}/classification",
            data=json.dumps({"classification": "prank"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="PUT",
        )
        assert (status, headers["etag"], body["classification"]) == (200, '"2"', "prank")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    workers = set(re.findall(r"Started server process \[(\d+)\]", stderr))
    assert len(workers) == 2, stderr
