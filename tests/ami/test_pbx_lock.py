"""Two backends for one PBX: the second refuses to record it, and says why in one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CALLCENTER = str(Path(sys.executable).parent / "callcenter")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listener_environ(database_url: str, data_dir: Path) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "CALLCENTER_DATABASE_URL": database_url,
        "CALLCENTER_DATA_DIR": str(data_dir),
        # No Asterisk here: the listener keeps retrying, which is all this test needs.
        "CALLCENTER_AMI__PORT": str(closed_port()),
        "CALLCENTER_AMI__SPOOL_DIR": str(data_dir / "spool"),
        "CALLCENTER_FASTAGI__ENABLED": "false",
    }


def start(command: list[str], environ: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=environ, stderr=subprocess.PIPE)


def wait_for_line(process: subprocess.Popen[bytes], text: str) -> None:
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    for raw in process.stderr:
        if text in raw.decode("utf-8", "replace") or time.monotonic() > deadline:
            return
    raise AssertionError(f"{text!r} never appeared")


def second_refused(
    first: list[str], second: list[str], env1: dict[str, str], env2: dict[str, str]
) -> str:
    running = start(first, env1)
    try:
        wait_for_line(running, "Uvicorn running" if "serve" in first else "AMI")
        time.sleep(0.5)
        result = subprocess.run(second, env=env2, capture_output=True, timeout=60)
    finally:
        running.terminate()
        running.wait(timeout=30)
        assert running.stderr is not None
        running.stderr.close()
    assert result.returncode == 1, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    return stderr


SERVE = [CALLCENTER, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"]


def test_second_serve_on_the_same_host_is_refused(database_url: str, tmp_path: Path) -> None:
    environ = listener_environ(database_url, tmp_path / "data")

    stderr = second_refused(SERVE, SERVE, environ, environ)

    assert "another AMI listener for PBX 'ttu-pbx-1' is running on this host" in stderr


@pytest.mark.postgres
def test_second_listener_elsewhere_on_the_same_postgres_is_refused(
    postgres_url: str, tmp_path: Path
) -> None:
    """Another host (another data dir) sharing the database: PostgreSQL's advisory lock."""
    first = listener_environ(postgres_url, tmp_path / "host-a")
    second = listener_environ(postgres_url, tmp_path / "host-b")

    stderr = second_refused(SERVE, [CALLCENTER, "ami"], first, second)

    assert "is writing to this database (PostgreSQL advisory lock held)" in stderr


def test_another_pbx_name_runs_beside_it(database_url: str, tmp_path: Path) -> None:
    environ = listener_environ(database_url, tmp_path / "data")
    other = {**environ, "CALLCENTER_AMI__PBX_NAME": "soe-pbx"}
    running = start(SERVE, environ)
    try:
        wait_for_line(running, "Uvicorn running")
        beside = start(SERVE, other)
        wait_for_line(beside, "Uvicorn running")
        assert beside.poll() is None
        beside.terminate()
        assert beside.wait(timeout=30) == 0
        assert beside.stderr is not None
        beside.stderr.close()
    finally:
        running.terminate()
        running.wait(timeout=30)
        assert running.stderr is not None
        running.stderr.close()
