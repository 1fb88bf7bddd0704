"""Two backends for one PBX: the second refuses to record it, and says why in one line."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


def refused(second: list[str], environ: dict[str, str]) -> str:
    """Run the second backend beside the holder: it must exit 1 with one clear line."""
    result = subprocess.run(second, env=environ, capture_output=True, timeout=60)
    assert result.returncode == 1, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr
    return stderr


SERVE = [CALLCENTER, "serve", "--host", "127.0.0.1", "--port", "0", "--no-migrate"]


@dataclass(frozen=True)
class Holder:
    """A running `callcenter serve` that holds the lock on PBX 'ttu-pbx-1'."""

    database_url: str
    environ: dict[str, str]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def holder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Holder]:
    """One holder per database for the whole module: each test starts only the backend that
    meets it (a serve start costs ~2 CPU s), and the holder is the same as one per test's."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("holder-db") / "callcenter.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database_url = f"sqlite:///{path}"
    else:
        database_url = request.getfixturevalue("postgres_url")
    environ = listener_environ(database_url, tmp_path_factory.mktemp("host-a"))
    running = start(SERVE, environ)
    assert running.stderr is not None
    stderr = running.stderr
    try:
        wait_for_line(running, "Uvicorn running")
        # Its log goes on while the tests run: read it, or a full pipe would stall it.
        drain = threading.Thread(target=stderr.read, daemon=True)
        drain.start()
        time.sleep(0.5)
        yield Holder(database_url, environ)
    finally:
        running.terminate()
        running.wait(timeout=30)
        stderr.close()


def test_second_serve_on_the_same_host_is_refused(holder: Holder) -> None:
    stderr = refused(SERVE, holder.environ)

    assert "another AMI listener for PBX 'ttu-pbx-1' is running on this host" in stderr


@pytest.mark.parametrize("holder", ["postgres"], indirect=True)
@pytest.mark.postgres
def test_second_listener_elsewhere_on_the_same_postgres_is_refused(
    holder: Holder, tmp_path: Path
) -> None:
    """Another host (another data dir) sharing the database: PostgreSQL's advisory lock."""
    second = listener_environ(holder.database_url, tmp_path / "host-b")

    stderr = refused([CALLCENTER, "ami"], second)

    assert "is writing to this database (PostgreSQL advisory lock held)" in stderr


def test_another_pbx_name_runs_beside_it(holder: Holder) -> None:
    other = {**holder.environ, "CALLCENTER_AMI__PBX_NAME": "soe-pbx"}
    beside = start(SERVE, other)
    try:
        wait_for_line(beside, "Uvicorn running")
        assert beside.poll() is None
        beside.terminate()
        assert beside.wait(timeout=30) == 0
    finally:
        if beside.poll() is None:
            beside.kill()
            beside.wait()
        assert beside.stderr is not None
        beside.stderr.close()
