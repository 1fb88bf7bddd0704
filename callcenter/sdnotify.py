"""systemd readiness (``Type=notify``): READY=1 once the process says it is ready.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace) to a
``Type=notify`` service; a datagram ``READY=1`` there ends its start-up. Without the variable
(a terminal, a test, another supervisor) every function here does nothing.

``callcenter serve`` ties readiness to ``/readyz`` itself::

    notifier = sdnotify.notify_when_ready(sdnotify.readyz_check(f"http://{host}:{port}/readyz"))
    ...  # uvicorn.run(...)
    notifier.stop()

``callcenter ami`` ties it to the listener's own probe (the one ``/readyz`` shows as "ami").
Until ready, the unit stays "activating" and ``STATUS=`` says which check is failing
(``systemctl status`` shows it); after READY=1 the status follows the checks as they change.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

log = logging.getLogger(__name__)

# A check answers (ready, a short line for systemctl status).
Check = Callable[[], tuple[bool, str]]


def notify(*lines: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``KEY=value`` lines to systemd; False when not run by systemd (or it failed)."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError as exc:
        log.warning("could not notify systemd (%s)", type(exc).__name__)
        return False
    return True


def readyz_check(url: str, timeout: float = 2.0) -> Check:
    """A check that asks the running API's ``/readyz`` (200 means ready)."""

    def check() -> tuple[bool, str]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return True, _summary(response.read())
        except urllib.error.HTTPError as exc:  # 503: not ready, the body says why
            return False, _summary(exc.read())
        except OSError as exc:
            return False, f"/readyz not answering ({type(exc).__name__})"

    return check


def probe_check(probe: Callable[[], str]) -> Check:
    """A check from a readiness probe as registered on app.state ("ok" or why not)."""

    def check() -> tuple[bool, str]:
        answer = probe()
        return answer == "ok", answer

    return check


def _summary(body: bytes) -> str:
    try:
        checks = json.loads(body).get("checks", {})
    except (ValueError, AttributeError):
        return "unreadable /readyz answer"
    failing = [f"{name}: {value}" for name, value in checks.items() if value != "ok"]
    return "; ".join(failing) if failing else "ready"


class ReadinessNotifier:
    """A daemon thread: STATUS= on every change of the check's answer, READY=1 the first time."""

    def __init__(self, check: Check, *, interval: float = 2.0) -> None:
        self.check = check
        self.interval = interval
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sd-notify", daemon=True)

    def start(self) -> ReadinessNotifier:
        if os.environ.get("NOTIFY_SOCKET"):  # not run by systemd: nobody to tell
            self._thread.start()
        return self

    def _run(self) -> None:
        last = ""
        while not self._stop.is_set():
            ok, status = self.check()
            if ok and not self.ready.is_set():
                self.ready.set()
                notify("READY=1", f"STATUS={status}")
                last = status
            elif status != last:
                notify(f"STATUS={status}")
                last = status
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        notify("STOPPING=1")
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)


def notify_when_ready(check: Check, *, interval: float = 2.0) -> ReadinessNotifier:
    """Start a notifier (it does nothing when systemd did not start this process)."""
    return ReadinessNotifier(check, interval=interval).start()
