"""The FastAGI server: one forked process per connection, at most `max_sessions` at a time.

pyst2's AGI() installs a SIGHUP handler, which only works in a process's main thread, and its
own fastagi module is Python 2 only. So this server is a small single-threaded accept loop that
forks: each session runs in the main thread of its own process, and a session that crashes
takes nothing else with it. When every slot is busy a new connection is closed at once: Asterisk
then finds the AGI failed and the dialplan queues the caller at normal priority, rather than
leaving the caller in silence until a slot frees.

The parent never opens the database, so no connection crosses a fork; the heavy modules are
imported before the first fork so each child starts warm.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from callcenter.settings import Settings

log = logging.getLogger(__name__)

# Asterisk answers every command within a prompt's length; a silent peer this long is gone.
SESSION_READ_TIMEOUT = 120.0
# On shutdown, callers still in the IVR get this long to finish before their sessions end.
SHUTDOWN_GRACE = 30.0


class FastAgiServer:
    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        max_sessions: int,
        *,
        parent_pid: int | None = None,
    ) -> None:
        self.settings = settings
        # Started by `callcenter serve`: stop when that process is gone, even if it was killed.
        self.parent_pid = parent_pid
        self.host = host
        self.port = port
        self.max_sessions = max(1, max_sessions)
        self.children: set[int] = set()
        self.refused = 0
        self._listener: socket.socket | None = None
        self._stopping = False

    def bind(self) -> tuple[str, int]:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(max(128, self.max_sessions * 2))
        self._listener = listener
        host, port = listener.getsockname()[:2]
        return str(host), int(port)

    def stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        self._stopping = True

    def serve_forever(self) -> None:
        if self._listener is None:
            self.bind()
        assert self._listener is not None
        _preload()
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        try:
            while not self._stopping:
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    log.warning("the process that started the FastAGI server is gone: stopping")
                    self._stopping = True
                    break
                self._reap()
                with contextlib.suppress(InterruptedError):
                    readable, _, _ = select.select([self._listener], [], [], 0.2)
                    if readable:
                        self._accept(self._listener)
        finally:
            self._listener.close()
            self._drain()

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        self._reap()
        if len(self.children) >= self.max_sessions:
            self.refused += 1
            log.warning(
                "all %d FastAGI sessions busy: refused %s, the dialplan queues the caller",
                self.max_sessions,
                peer,
            )
            conn.close()
            return
        pid = os.fork()
        if pid == 0:  # the child: never returns
            listener.close()
            _run_child(conn, self.settings)
        conn.close()
        self.children.add(pid)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            self.children.discard(pid)

    def _drain(self) -> None:
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while self.children and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._reap()


def _run_child(conn: socket.socket, settings: Settings) -> None:
    """One AGI session in this forked process's main thread, then exit without cleanup
    handlers (they belong to the parent)."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, not the callers
        from callcenter.ivr.flow import Outcome
        from callcenter.ivr.runner import run_agi

        conn.settimeout(SESSION_READ_TIMEOUT)
        reader = conn.makefile("rb")
        writer = conn.makefile("wb")

        def release() -> None:
            for stream in (writer, reader):
                with contextlib.suppress(OSError):
                    stream.close()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

        outcome = run_agi(reader, writer, settings, release=release)
        code = 1 if outcome is Outcome.agi_error else 0
    except BaseException:
        log.exception("FastAGI session crashed")
    finally:
        logging.shutdown()
        os._exit(code)


def _preload() -> None:
    """Import (and warm) what every session needs, once, before the first fork."""
    from callcenter.ivr import runner, store  # noqa: F401
    from callcenter.phone import normalise

    normalise("081234567890")


def start_subprocess(settings: Settings, **popen: Any) -> subprocess.Popen[bytes]:
    """`callcenter fastagi` beside another process (`callcenter serve`): its own process, so
    the forks never copy the API's threads or database pools."""
    command = [sys.executable, "-m", "callcenter.cli", "fastagi"]
    command += ["--host", settings.fastagi.host, "--port", str(settings.fastagi.port)]
    command += ["--max-sessions", str(settings.fastagi.max_sessions), "--exit-with-parent"]
    return subprocess.Popen(command, **popen)


def stop_subprocess(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=SHUTDOWN_GRACE + 5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
