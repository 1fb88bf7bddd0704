"""The FastAGI server: one thread per session, in the process that runs it.

A session spends nearly all its life waiting for Asterisk to finish playing a prompt, so a
waiting thread is all it needs: a few hundred KiB, and a burst of several hundred callers in
the IVR at once costs a few hundred threads, not processes (README: "IVR in a burst"). The
look-ups of all sessions share one bounded pool of threads and database connections.

pyst2's AGI() installs a SIGHUP handler, which only works in a process's main thread; FastAGI
sessions never get SIGHUP (Asterisk writes a ``HANGUP`` line instead), so they use SafeAGI
without it (agi.py). Running in threads also means `callcenter serve` starts no child process
that could outlive it.

Who may open a session: peers in ``[fastagi] allowed_peers`` (when set), carrying
``?secret=`` in the AGI URL (when ``[fastagi] secret`` is set), that send their environment
within ENVIRONMENT_TIMEOUT. A caller that arrives while every slot is taken is still answered:
the session sets CALLER_FLAG=unchecked, IVR_SKIPPED=busy and the normal priority at once and
hands the call back, so the dialplan and the call's record both show the IVR was skipped.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import resource
import socket
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from callcenter.ivr.agi import AgiChannel, SafeAGI
from callcenter.ivr.flow import VAR_FLAG, VAR_PRIORITY, CallerFlag, Outcome, call_from_env
from callcenter.ivr.runner import Shared, open_agi, record, run_ivr
from callcenter.ivr.session import AgiProtocolError, CallerHungUp, RunFacts
from callcenter.settings import Settings

log = logging.getLogger(__name__)

# A peer that has not sent its whole agi_* block by then is not an Asterisk starting a call.
ENVIRONMENT_TIMEOUT = 2.0
# Asterisk answers every command within a prompt's length; a silent peer this long is gone.
SESSION_READ_TIMEOUT = 120.0
# On shutdown, callers still in the IVR get this long before their sessions are handed back.
SHUTDOWN_GRACE = 5.0
# Threads (and database connections) for the callers' look-ups, shared by every session.
LOOKUP_THREADS = 8
# How long a refusal keeps /readyz from saying "ok".
BUSY_WINDOW_SECONDS = 60.0
VAR_SKIPPED = "IVR_SKIPPED"


class FastAgiBindError(Exception):
    """The server cannot listen where it was told to (port taken, address not ours)."""


@dataclass
class Counters:
    """What the server has done since it started, for /readyz and the logs."""

    served: int = 0
    skipped: int = 0
    refused_peers: int = 0
    accept_errors: int = 0
    recent_skips: deque[float] = field(default_factory=deque)


class FastAgiServer:
    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        max_sessions: int | None = None,
    ) -> None:
        config = settings.fastagi
        self.settings = settings
        self.host = config.host if host is None else host
        self.port = config.port if port is None else port
        self.max_sessions = max(1, config.max_sessions if max_sessions is None else max_sessions)
        self.allowed_peers = {_normal_address(peer) for peer in config.allowed_peers}
        self.secret = config.secret.get_secret_value() if config.secret else None
        self.counters = Counters()
        self.last_error = ""
        self._sessions: set[socket.socket] = set()
        self._sessions_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._accepting: threading.Thread | None = None
        self._shared: Shared | None = None
        # Busy callers are answered here, a few at a time, never on a session slot.
        self._skips = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fastagi-skip")

    # -- life cycle -----------------------------------------------------------------------

    def bind(self) -> tuple[str, int]:
        """Listen, then warm up; raises FastAgiBindError with one clear line."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as exc:
            listener.close()
            reason = "already in use" if exc.errno == 98 else exc.strerror or str(exc)
            raise FastAgiBindError(
                f"FastAGI server cannot listen on {self.host}:{self.port}: {reason}"
                " (another backend running? set [fastagi] port or CALLCENTER_FASTAGI__PORT)"
            ) from None
        listener.listen(1024)
        self._listener = listener
        _allow_open_files(self.max_sessions * 2 + 64)
        self._warn_if_open_to_all()
        self._shared = self._warm_up()
        host, port = listener.getsockname()[:2]
        self.port = int(port)
        return str(host), int(port)

    def start(self) -> None:
        """Accept in a background thread (how `callcenter serve` runs it)."""
        if self._listener is None:
            self.bind()
        self._accepting = threading.Thread(
            target=self.serve_forever, name="fastagi-accept", daemon=True
        )
        self._accepting.start()

    def serve_forever(self) -> None:
        """Accept until stop(); an accept error (out of files, ...) is logged and retried."""
        if self._listener is None:
            self.bind()
        assert self._listener is not None
        listener = self._listener
        listener.settimeout(0.2)
        backoff = 0.05
        while not self._stopping.is_set():
            try:
                conn, peer = listener.accept()
                self._admit(conn, str(peer[0]))
                backoff, self.last_error = 0.05, ""
            except TimeoutError:
                continue
            except Exception as exc:  # out of files, out of threads, ...: never stop accepting
                if self._stopping.is_set():
                    break
                self.counters.accept_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("FastAGI accept failed (%s): retrying in %.2f s", exc, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def request_stop(self) -> None:
        """Ask serve_forever to return (safe from a signal handler); then call stop()."""
        self._stopping.set()

    def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting; sessions get `grace` seconds, then their calls are handed back."""
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        if self._accepting is not None and self._accepting is not threading.current_thread():
            self._accepting.join(timeout=2)
        deadline = time.monotonic() + grace
        while self.active_sessions() and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._sessions_lock:
            left = list(self._sessions)
        for conn in left:  # the session thread sees EOF, records the run and ends
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 2
        while self.active_sessions() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._skips.shutdown(wait=True, cancel_futures=False)
        if self._shared is not None:
            self._shared.lookups.shutdown(wait=False, cancel_futures=True)
            self._shared.engine.dispose()
        log.info("FastAGI server stopped (%d sessions left at the end)", len(left))

    def active_sessions(self) -> int:
        with self._sessions_lock:
            return len(self._sessions)

    def readiness(self) -> str:
        """'ok', or why not: not listening, or callers queued without the IVR lately."""
        if self._listener is None or self._stopping.is_set():
            return "not listening"
        if self._accepting is not None and not self._accepting.is_alive():
            return "not accepting: the accept thread ended"
        if self.last_error:  # cleared by the next connection accepted
            return f"failing to accept: {self.last_error}"
        recent = self._recent_skips()
        if recent:
            return (
                f"busy: {recent} callers queued without the IVR in the last "
                f"{BUSY_WINDOW_SECONDS:.0f} s (all {self.max_sessions} sessions in use)"
            )
        return "ok"

    # -- sessions -------------------------------------------------------------------------

    def _admit(self, conn: socket.socket, peer: str) -> None:
        if self.allowed_peers and _normal_address(peer) not in self.allowed_peers:
            self.counters.refused_peers += 1
            log.warning("FastAGI connection from %s refused: not in [fastagi] allowed_peers", peer)
            conn.close()
            return
        with self._sessions_lock:
            full = len(self._sessions) >= self.max_sessions
            if not full:
                self._sessions.add(conn)
        if full:
            self._skips.submit(self._skip, conn, peer, Outcome.skipped_busy)
            return
        thread = threading.Thread(
            target=self._session, args=(conn, peer), name="fastagi-session", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # no more threads: still answer the caller
            self._forget(conn)
            self._skips.submit(self._skip, conn, peer, Outcome.skipped_busy)

    def _session(self, conn: socket.socket, peer: str) -> None:
        agi: SafeAGI | None = None
        try:
            agi = self._open(conn, peer)
            if agi is None:
                return
            conn.settimeout(SESSION_READ_TIMEOUT)
            opened = agi
            run_ivr(agi, self.settings, release=lambda: _release(conn, opened), shared=self._shared)
            self.counters.served += 1
        except Exception:
            log.exception("FastAGI session from %s crashed; the dialplan queues the call", peer)
        finally:
            self._forget(conn)
            _release(conn, agi)

    def _skip(self, conn: socket.socket, peer: str, outcome: Outcome) -> None:
        """No slot: set what the dialplan and the call's record need, and hand the call back."""
        agi: SafeAGI | None = None
        try:
            agi = self._open(conn, peer)
            if agi is None:
                return
            conn.settimeout(ENVIRONMENT_TIMEOUT)
            call = call_from_env(agi.env, default_pbx=self.settings.ami.pbx_name)
            self.counters.skipped += 1
            self.counters.recent_skips.append(time.monotonic())
            log.warning(
                "all %d FastAGI sessions busy: %s queued without the IVR (%s=unchecked)",
                self.max_sessions,
                call.call_ref,
                VAR_FLAG,
            )
            now = datetime.now(UTC)
            facts = RunFacts(
                pbx=call.pbx,
                uniqueid=call.uniqueid,
                channel=call.channel,
                caller_raw=call.caller_raw,
                started_at=now,
                flag=CallerFlag.unchecked,
                priority=self.settings.ivr.priority_normal,
                outcome=outcome,
            )
            channel = AgiChannel(agi)
            with contextlib.suppress(CallerHungUp, AgiProtocolError):
                channel.set_variable(VAR_FLAG, CallerFlag.unchecked.value)
                channel.set_variable(VAR_SKIPPED, "busy")
                channel.set_variable(VAR_PRIORITY, str(self.settings.ivr.priority_normal))
            _release(conn, agi)
            facts.ended_at = datetime.now(UTC)
            record(facts, self.settings, self._shared.engine if self._shared else None)
        except Exception:
            log.exception("FastAGI busy answer to %s failed; the dialplan queues the call", peer)
        finally:
            _release(conn, agi)

    def _open(self, conn: socket.socket, peer: str) -> SafeAGI | None:
        """The session's AGI once its environment is in and its secret checked; else None."""
        conn.settimeout(ENVIRONMENT_TIMEOUT)
        try:
            agi = open_agi(conn.makefile("rb"), conn.makefile("wb"), sighup=False)
        except (OSError, ValueError) as exc:
            log.warning("FastAGI peer %s sent no complete AGI environment (%s): closed", peer, exc)
            return None
        if self.secret is not None and not _has_secret(agi.env, self.secret):
            log.warning(
                "FastAGI session from %s without the right ?secret= in its URL: closed", peer
            )
            return None
        return agi

    def _forget(self, conn: socket.socket) -> None:
        with self._sessions_lock:
            self._sessions.discard(conn)

    def _recent_skips(self) -> int:
        recent = self.counters.recent_skips
        horizon = time.monotonic() - BUSY_WINDOW_SECONDS
        while recent and recent[0] < horizon:
            recent.popleft()
        return len(recent)

    # -- start-up -------------------------------------------------------------------------

    def _warm_up(self) -> Shared:
        """Imports, mappers, the look-up pool and one database connection, before the first
        call: a cold start costs the first caller nothing."""
        from sqlalchemy.orm import configure_mappers

        from callcenter.ivr.lookup import count_recent_pranks, server_engine

        configure_mappers()
        engine = server_engine(self.settings.resolved_database_url, LOOKUP_THREADS + 4)
        lookups = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="ivr-lookup")
        try:
            count_recent_pranks("081234567890", self.settings, engine)
        except Exception as exc:  # the database may come later; look-ups miss meanwhile
            log.warning("FastAGI warm-up could not reach the database: %s", type(exc).__name__)
        return Shared(engine=engine, lookups=lookups)

    def _warn_if_open_to_all(self) -> None:
        if self.allowed_peers or self.secret is not None:
            return
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(self.host).is_loopback:
                return
        log.warning(
            "FastAGI server listens on %s with no [fastagi] allowed_peers and no secret: any "
            "host that reaches it can start IVR sessions",
            self.host,
        )


def _release(conn: socket.socket, agi: SafeAGI | None) -> None:
    """Hand the channel back: Asterisk sees the connection close and goes on to the queue.

    The socket's file objects are closed too: until they are, close() keeps the descriptor.
    """
    if agi is not None:
        for stream in (agi.stdout, agi.stdin):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


def _has_secret(env: dict[str, str], secret: str) -> bool:
    query = parse_qs(urlsplit(env.get("agi_request", "")).query)
    given = (query.get("secret") or [""])[0]
    return hmac.compare_digest(given.encode(), secret.encode())


def _normal_address(address: str) -> str:
    """'::ffff:10.0.0.5' and '10.0.0.5' are one peer."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _allow_open_files(wanted: int) -> None:
    """Each session holds a socket: raise the soft limit on open files towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
