"""deploy/: the install script brings the backend up from the built wheel in a clean folder.

One install (a fresh virtual environment, the wheel and its dependencies from the package
index, about 40 s) serves every test here; the folder stands in for /opt, /etc and /var/lib.
pip keeps this machine's cache: HOME is the clean folder, and with it an empty cache would make
every run download (and build) each dependency again; what is installed stays the same.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callcenter import sdnotify
from callcenter.ami.fake_server import FakeAsterisk
from callcenter.settings import PROJECT_ROOT

UNITS = sorted((PROJECT_ROOT / "deploy" / "systemd").iterdir())


@dataclass(frozen=True)
class Installed:
    root: Path
    prefix: Path
    etc: Path
    state: Path
    units: Path

    @property
    def callcenter(self) -> Path:
        return self.prefix / "venv" / "bin" / "callcenter"

    def environ(self, **extra: str) -> dict[str, str]:
        """The units' environment: /etc/siaga112/env and the config file, nothing of ours."""
        env = {"PATH": os.environ["PATH"], "CALLCENTER_CONFIG": str(self.etc / "callcenter.toml")}
        for line in (self.etc / "env").read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key] = value
        return env | extra


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pip_cache_dir() -> str | None:
    """This machine's pip cache (None when pip's cache is off)."""
    if "PIP_CACHE_DIR" in os.environ:
        return os.environ["PIP_CACHE_DIR"]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("clean-host")
    dist = root / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, PROJECT_ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("siaga112-*.whl")
    host = Installed(
        root, root / "opt" / "siaga112", root / "etc", root / "var" / "lib", root / "units"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root),
        "PREFIX": str(host.prefix),
        "ETC_DIR": str(host.etc),
        "STATE_DIR": str(host.state),
        "BACKUP_DIR": str(root / "backups"),
        "UNIT_DIR": str(host.units),
        "BIN_DIR": str(root / "bin"),
        "SERVICE_USER": "",
        "SYSTEMCTL": "0",
        "PYTHON": shutil.which("python3.11") or "python3",
    }
    env |= {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    cache = _pip_cache_dir()
    if cache:
        env["PIP_CACHE_DIR"] = cache
    result = subprocess.run(
        ["bash", PROJECT_ROOT / "deploy" / "install.sh", wheel],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return host


@pytest.fixture
def serve(installed: Installed, tmp_path: Path) -> Iterator[str]:
    """`callcenter serve` from the installed wheel, run as its unit runs it; yields its URL."""
    port = free_port()
    env = installed.environ(
        CALLCENTER_AMI__ENABLED="false", CALLCENTER_FASTAGI__PORT=str(free_port())
    )
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [installed.callcenter, "serve", "--port", str(port), "--no-migrate"],
            env=env,
            cwd=installed.state,
            stdout=log,
            stderr=log,
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            # uvicorn ends by re-raising SIGTERM: systemd counts that as a clean stop.
            code = process.wait(timeout=30)
            assert code in (0, -signal.SIGTERM), (tmp_path / "serve.log").read_text()


@pytest.mark.timeout(600)
def test_the_installed_backend_answers_readyz_from_a_clean_folder(
    installed: Installed, serve: str
) -> None:
    deadline = time.monotonic() + 60
    status, body = 0, b""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{serve}/readyz", timeout=2) as response:
                status, body = response.status, response.read()
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    assert status == 200, body
    assert b'"ready":true' in body
    # The same answer through the check that tells systemd (callcenter.sdnotify).
    assert sdnotify.readyz_check(f"{serve}/readyz")() == (True, "ready")
    # It ran the wheel's code and migrations, and wrote nothing outside the clean folder.
    site = next((installed.prefix / "venv" / "lib").glob("python3*/site-packages"))
    assert (site / "callcenter" / "sdnotify.py").exists()
    share = installed.prefix / "venv" / "share" / "siaga112"
    assert sorted(p.name for p in (share / "migrations" / "versions").glob("*.py")) == sorted(
        p.name for p in (PROJECT_ROOT / "migrations" / "versions").glob("*.py")
    )
    assert (installed.state / "callcenter.db").exists()


@pytest.mark.timeout(600)
def test_the_install_writes_production_config_with_secrets_only_it_can_read(
    installed: Installed,
) -> None:
    config = (installed.etc / "callcenter.toml").read_text()
    assert 'environment = "production"' in config
    assert f'data_dir = "{installed.state}"' in config
    env_file = installed.etc / "env"
    assert env_file.stat().st_mode & 0o077 == 0
    secrets = installed.environ()
    assert len(secrets["CALLCENTER_TOKEN_SECRET"]) >= 32
    assert len(secrets["CALLCENTER_AMI__SECRET"]) >= 32
    # `siaga112 COMMAND` runs callcenter with them (the install migrated the database with it).
    result = subprocess.run(
        [installed.root / "bin" / "siaga112", "migrate"],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.timeout(600)
def test_the_installed_units_pass_systemd_analyze_verify(installed: Installed) -> None:
    installed_units = sorted(p.name for p in installed.units.iterdir())
    assert installed_units == [p.name for p in UNITS]
    # A template is verified through an instance of it.
    shutil.copy(
        installed.units / "siaga112-ami@.service", installed.units / "siaga112-ami@pbx1.service"
    )
    # The notification worker's command may not exist yet in this version: verify checks that
    # ExecStart is an executable, which it is (the console script).
    names = [p.name for p in installed.units.iterdir() if "@." not in p.name]
    result = subprocess.run(
        ["systemd-analyze", "verify", *names],
        cwd=installed.units,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # verify exits 0 on a misspelt option too, and says so: it must say nothing.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    # The paths followed the install's folders.
    for unit in installed.units.glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "EnvironmentFile=", "WorkingDirectory=")):
                assert str(installed.root) in line, (unit.name, line)


@pytest.mark.timeout(600)
def test_callcenter_ami_tells_systemd_it_is_ready_once_logged_in(
    installed: Installed, tmp_path: Path
) -> None:
    notify_path = tmp_path / "notify.sock"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify_socket,
        FakeAsterisk([[]], close_at_end=False, secret="s3cret-for-the-test") as fake,
    ):
        notify_socket.bind(str(notify_path))
        notify_socket.settimeout(60)
        metrics_port = free_port()
        env = installed.environ(
            NOTIFY_SOCKET=str(notify_path),
            CALLCENTER_METRICS__ENABLED="true",
            CALLCENTER_METRICS__PORT=str(metrics_port),
            CALLCENTER_AMI__PBX_NAME="pbx-under-test",
            CALLCENTER_AMI__PORT=str(fake.port),
            CALLCENTER_AMI__SECRET="s3cret-for-the-test",
            CALLCENTER_AMI__SPOOL_DIR=str(tmp_path / "spool"),
        )
        process = subprocess.Popen(
            [installed.callcenter, "ami"], env=env, cwd=installed.state, stderr=subprocess.PIPE
        )
        try:
            messages: list[str] = []
            while not any("READY=1" in m for m in messages):
                messages.append(notify_socket.recv(4096).decode())
            # Its own metrics port says the same: logged in.
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=10) as response:
                scraped = response.read().decode()
            assert 'siaga112_ami_up{pbx="pbx-under-test"} 1.0' in scraped
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert notify_socket.recv(4096).decode() == "STOPPING=1"
