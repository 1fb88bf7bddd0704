"""The backend under test: `callcenter serve` (API, AMI listener, FastAGI) as a process of its
own, so it can be killed with SIGKILL and started again on the same spool and ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CALLCENTER = str(Path(sys.executable).parent / "callcenter")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Backend:
    def __init__(self, environ: dict[str, str], api_port: int, log: Path) -> None:
        self.environ = environ
        self.api_port = api_port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CALLCENTER, "serve", "--port", str(self.api_port)],
                env=self.environ,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()
        self.starts += 1
        self.wait_listening()

    def wait_listening(self, timeout: float = 120) -> None:
        """Until the API answers (the listener and FastAGI start before it)."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.api_port}/healthz"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"the backend exited ({self.process.returncode}): see {self.log}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise SystemExit(f"the backend did not start within {timeout:.0f} s: see {self.log}")

    def kill(self) -> None:
        """kill -9: no clean-up of any kind (the listener's queue and batch are lost)."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int:
        if self.process is None:
            return 0
        self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def rss(self) -> float:
        return rss_mib(self.pid)
