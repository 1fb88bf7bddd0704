"""The FastAGI server over real TCP sockets, fed the recorded Asterisk lines (FastAGI).

Most tests run the server in the test's process, as `callcenter serve` does; the command
itself (`callcenter fastagi`) is run as a process where the process is the point.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from callcenter.ivr.server import LOOKUP_THREADS, FastAgiServer
from callcenter.settings import Settings
from tests.ivr.fake_asterisk import RecordedSession, Scenario, expected_commands, session
from tests.ivr.harness import CALLCENTER, ivr_environ, ivr_runs, seed_pranks

FAST = session("05-hangup-in-ivr", "fastagi")  # 085237001122, agi_network block
WITHHELD = session("10-callerid-edge-cases", "agi-process", 1)  # no caller ID at all
# A carrier's withheld caller (Privacy: id): the asserted number, agi_callingpres: 32.
PRIVATE = session("24-pjsip-operator-hangup-withheld", "fastagi")
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@dataclasses.dataclass
class Server:
    """The FastAGI server, in this process as `callcenter serve` runs it, its log captured."""

    server: FastAgiServer
    log: list[str]
    handler: logging.Handler

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> str:
        """As on SIGTERM: running sessions finish (and record) before it returns."""
        self.server.stop()
        logging.getLogger("callcenter").removeHandler(self.handler)
        return "".join(self.log)


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(self.format(record) + "\n")


def start_server(environ: dict[str, str], *extra: str) -> Server:
    """Settings read from `environ` (CALLCENTER_*), like the command; `--max-sessions N`."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(environ)
    try:
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    max_sessions = int(extra[1]) if extra[:1] == ("--max-sessions",) else None
    log: list[str] = []
    handler = _Collect(log)
    logger = logging.getLogger("callcenter")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    server = FastAgiServer(settings, host="127.0.0.1", port=0, max_sessions=max_sessions)
    server.start()
    return Server(server, log, handler)


@pytest.fixture
def server(environ: dict[str, str]) -> Iterator[Server]:
    running = start_server(environ)
    yield running
    running.stop()


def converse(port: int, scenario: Scenario) -> list[str]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=60) as conn,
        conn.makefile("rb") as reader,
    ):

        def write(data: bytes) -> None:
            with contextlib.suppress(OSError):  # the IVR may close first
                conn.sendall(data)

        return scenario.converse(reader.readline, write)


def converse_refused(port: int, scenario: Scenario) -> list[str]:
    """A conversation the server ends unread: Asterisk sees EOF or a reset either way."""
    with contextlib.suppress(ConnectionResetError):
        converse(port, scenario)
    return scenario.sent


def with_request(recorded: RecordedSession, request: str) -> RecordedSession:
    env = [
        f"agi_request: {request}\n".encode() if line.startswith(b"agi_request:") else line
        for line in recorded.env
    ]
    return dataclasses.replace(recorded, env=env)


def test_normal_caller(server: Server, database_url: str) -> None:
    sent = converse(server.port, Scenario(FAST, fastagi=True))
    server.stop()

    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    row = ivr_runs(database_url)[FAST.uniqueid]
    assert (row.caller_e164, row.flag, row.outcome) == ("+6285237001122", "none", "completed")


def test_prank_caller(server: Server, database_url: str) -> None:
    seed_pranks(database_url, "+6285237001122", count=3)

    sent = converse(server.port, Scenario(FAST, fastagi=True))
    server.stop()

    assert sent == expected_commands(
        FAST.uniqueid, flag="prank", priority=1, lookup="found", warning=True
    )
    assert ivr_runs(database_url)[FAST.uniqueid].warning_played


def test_withheld_caller(server: Server, database_url: str) -> None:
    sent = converse(server.port, Scenario(WITHHELD, fastagi=True))
    server.stop()

    assert sent == expected_commands(
        WITHHELD.uniqueid, flag="withheld", priority=10, lookup="withheld"
    )


def test_caller_who_withheld_the_number_keeps_it_and_is_marked(
    server: Server, database_url: str
) -> None:
    """Recorded over PJSIP: the number is looked up (a prank count would still count), the
    caller is flagged withheld, and CALLER_PRES tells the AMI listener the call is private."""
    sent = converse(server.port, Scenario(PRIVATE, fastagi=True))
    server.stop()

    assert sent == expected_commands(
        PRIVATE.uniqueid, flag="withheld", priority=10, lookup="found", private_pres=32
    )
    row = ivr_runs(database_url)[PRIVATE.uniqueid]
    assert (row.caller_id_raw, row.caller_e164, row.calling_pres) == (
        "038821234",
        "+6238821234",
        32,
    )


def test_hangup_line_does_not_desynchronise_replies(server: Server, database_url: str) -> None:
    """Recorded: `HANGUP` arrives unasked before the 511 of the next command."""
    scenario = Scenario(FAST, hang_up_during="custom/112-greeting", fastagi=True)

    sent = converse(server.port, scenario)
    server.stop()

    assert sent == [
        "ANSWER",
        f'SET VARIABLE CALLCENTER_CALL_ID "ttu-pbx-1:{FAST.uniqueid}"',
        'STREAM FILE custom/112-greeting ""',
        "CHANNEL STATUS",
    ]
    assert ivr_runs(database_url)[FAST.uniqueid].outcome == "caller_hung_up"


def test_missing_prompt_goes_on_to_the_queue(server: Server, database_url: str) -> None:
    scenario = Scenario(FAST, missing_prompts=frozenset({"custom/112-greeting"}), fastagi=True)

    sent = converse(server.port, scenario)
    log = server.stop()

    expected = expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert sent == [*expected[:3], "CHANNEL STATUS", *expected[3:]]
    assert ivr_runs(database_url)[FAST.uniqueid].prompts_failed == 1
    assert "could not be played" in log


def test_pbx_named_in_the_agi_url(server: Server, database_url: str) -> None:
    recorded = with_request(FAST, "agi://127.0.0.1:4573/ivr?pbx=soe-pbx")

    sent = converse(server.port, Scenario(recorded, fastagi=True))
    server.stop()

    assert sent == expected_commands(
        FAST.uniqueid, flag="none", priority=10, lookup="found", pbx="soe-pbx"
    )
    assert ivr_runs(database_url)[FAST.uniqueid].pbx == "soe-pbx"


def test_database_down(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere"
    running = start_server(ivr_environ(url, tmp_path))
    try:
        sent = converse(running.port, Scenario(FAST, fastagi=True))
    finally:
        log = running.stop()

    assert sent == expected_commands(FAST.uniqueid, flag="unchecked", priority=10, lookup="miss")
    assert "caller look-up missed" in log


def test_fifty_concurrent_sessions_none_lost(server: Server, database_url: str) -> None:
    uniqueids = [f"1795900000.{n}" for n in range(50)]
    barrier = threading.Barrier(50)

    def one(uniqueid: str) -> list[str]:
        barrier.wait()
        return converse(server.port, Scenario(FAST.with_uniqueid(uniqueid), fastagi=True))

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = dict(zip(uniqueids, pool.map(one, uniqueids), strict=True))
    log = server.stop()

    for uniqueid, sent in results.items():
        assert sent == expected_commands(uniqueid, flag="none", priority=10, lookup="found")
    runs = ivr_runs(database_url)
    assert set(runs) == set(uniqueids), log
    assert {run.outcome for run in runs.values()} == {"completed"}
    assert {run.lookup_status for run in runs.values()} == {"found"}
    assert "refused" not in log


def test_busy_server_still_answers_the_caller_unchecked(
    environ: dict[str, str], database_url: str
) -> None:
    """No slot left: the dialplan gets CALLER_FLAG=unchecked (never empty) and the normal
    priority at once, and the call's IVR record says it was skipped."""
    running = start_server(environ, "--max-sessions", "1")
    try:
        with (
            socket.create_connection(("127.0.0.1", running.port), timeout=60) as held,
            held.makefile("rb") as reader,
        ):
            held.sendall(b"".join(FAST.env))
            assert reader.readline() == b"ANSWER\n"  # the one slot is taken from here on

            busy = "1795900099.1"
            second = converse(running.port, Scenario(FAST.with_uniqueid(busy), fastagi=True))

            finish = Scenario(FAST, fastagi=True)
            finish.sent.append("ANSWER")
            held.sendall(b"200 result=0\n")
            finish.env = dataclasses.replace(FAST, env=[])
            sent = finish.converse(reader.readline, held.sendall)
    finally:
        log = running.stop()

    assert second == [
        'SET VARIABLE CALLER_FLAG "unchecked"',
        'SET VARIABLE IVR_SKIPPED "busy"',
        'SET VARIABLE QUEUE_PRIO "10"',
    ]
    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert "all 1 FastAGI sessions busy" in log
    runs = ivr_runs(database_url)
    assert (runs[busy].outcome, runs[busy].flag, runs[busy].priority) == (
        "skipped_busy",
        "unchecked",
        10,
    )
    assert runs[FAST.uniqueid].outcome == "completed"


def _wait_until_idle(server: Server) -> None:
    """Sessions record their runs after handing the call back: wait until every one has."""
    deadline = time.monotonic() + 60
    while server.server.active_sessions() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_known_call_is_never_rewritten_by_another_session(
    server: Server, database_url: str
) -> None:
    """IVR records are insert-only: a second session naming the same uniqueid (a peer making
    it up, or the IVR run twice) leaves the first run's flag and priority as they were."""
    seed_pranks(database_url, "+6285237001122", count=3)
    first = converse(server.port, Scenario(FAST, fastagi=True))
    # A session records its run after handing the call back: let the first one's land before
    # the impostor comes (otherwise, on a loaded machine, the impostor's could land first).
    _wait_until_idle(server)
    withheld_env = [
        b"agi_callerid: unknown\n" if line.startswith(b"agi_callerid:") else line
        for line in FAST.env
    ]
    impostor = dataclasses.replace(FAST, env=withheld_env)
    converse(server.port, Scenario(impostor, fastagi=True))
    log = server.stop()

    assert first[3] == 'SET VARIABLE CALLER_FLAG "prank"'
    run = ivr_runs(database_url)[FAST.uniqueid]
    assert (run.flag, run.priority, run.warning_played) == ("prank", 1, True)
    assert "already recorded: kept the first" in log


def test_peer_that_sends_no_environment_is_dropped(environ: dict[str, str]) -> None:
    """An idle socket cannot hold a slot: without a whole agi_* block in 2 s it is closed."""
    running = start_server(environ, "--max-sessions", "1")
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as idle:
            idle.sendall(b"agi_network: yes\n")  # and then nothing
            started = time.monotonic()
            assert idle.recv(100) == b""  # closed by the server
            waited = time.monotonic() - started
        sent = converse(running.port, Scenario(FAST, fastagi=True))
    finally:
        log = running.stop()

    assert waited < 10
    assert "sent no complete AGI environment" in log
    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")


def test_only_allowed_peers_with_the_secret_are_served(
    environ: dict[str, str], database_url: str
) -> None:
    elsewhere = start_server({**environ, "CALLCENTER_FASTAGI__ALLOWED_PEERS": '["10.9.9.9"]'})
    try:
        refused = converse_refused(elsewhere.port, Scenario(FAST, fastagi=True))
    finally:
        refused_log = elsewhere.stop()
    running = start_server({**environ, "CALLCENTER_FASTAGI__SECRET": "s3cr3t-pbx-key"})
    try:
        without = converse_refused(running.port, Scenario(FAST.with_uniqueid("1.1"), fastagi=True))
        wrong = with_request(FAST.with_uniqueid("1.2"), "agi://127.0.0.1/ivr?secret=guess")
        guessed = converse_refused(running.port, Scenario(wrong, fastagi=True))
        right = with_request(FAST, "agi://127.0.0.1:4573/ivr?secret=s3cr3t-pbx-key")
        served = converse(running.port, Scenario(right, fastagi=True))
    finally:
        log = running.stop()

    assert refused == []
    assert "not in [fastagi] allowed_peers" in refused_log
    assert without == guessed == []
    assert served == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert set(ivr_runs(database_url)) == {FAST.uniqueid}
    assert "s3cr3t-pbx-key" not in log
    assert "guess" not in log


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    """Refused before the database is touched: one database is enough."""
    environ = ivr_environ(f"sqlite:///{tmp_path}/unused.db", tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CALLCENTER, "fastagi", "--host", "127.0.0.1", "--port", str(port)],
            env=environ,
            capture_output=True,
            timeout=60,
        )

    assert result.returncode == 1
    assert b"already in use" in result.stderr
    assert b"Traceback" not in result.stderr


def test_burst_of_200_sessions_all_served(server: Server, database_url: str) -> None:
    """200 callers in the IVR at once, prompts answered after a short delay, some hanging up
    in the greeting: every one served, every flagged caller flagged; afterwards no session
    thread or socket is left."""
    flagged = "+6285237001122"
    seed_pranks(database_url, flagged, count=3)
    plain_env = [
        b"agi_callerid: 081234567890\n" if line.startswith(b"agi_callerid:") else line
        for line in FAST.env
    ]
    plain = dataclasses.replace(FAST, env=plain_env)
    threads_before = threading.active_count()
    sockets_before = _sockets()
    uniqueids = [f"1795910000.{n}" for n in range(200)]
    barrier = threading.Barrier(200)

    hang_ups = set(range(3, 200, 7))

    def one(n: int) -> list[str]:
        recorded = (FAST if n % 4 == 0 else plain).with_uniqueid(uniqueids[n])
        gone = "custom/112-greeting" if n in hang_ups else None
        barrier.wait()
        scenario = Scenario(recorded, fastagi=True, prompt_delay=0.3, hang_up_during=gone)
        return converse(server.port, scenario)

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(one, range(200)))
    _wait_until_idle(server)
    threads_after = threading.active_count()
    sockets_after = _sockets()
    log = server.stop()

    for n, sent in enumerate(results):
        if n in hang_ups:
            assert sent == [
                *expected_commands(uniqueids[n], flag="-", priority=0, lookup="-")[:3],
                "CHANNEL STATUS",
            ], log
        elif n % 4 == 0:
            assert sent == expected_commands(
                uniqueids[n], flag="prank", priority=1, lookup="found", warning=True
            ), log
        else:
            assert sent == expected_commands(
                uniqueids[n], flag="none", priority=10, lookup="found"
            ), log
    runs = ivr_runs(database_url)
    assert {run.uniqueid for run in runs.values()} == set(uniqueids)
    assert {runs[u].flag for n, u in enumerate(uniqueids) if n % 4 == 0 and n not in hang_ups} == {
        "prank"
    }
    assert {runs[uniqueids[n]].outcome for n in hang_ups} == {"caller_hung_up"}
    assert "busy" not in log
    assert "missed" not in log
    # What stays: the shared look-up pool, never a session's thread.
    assert threads_after <= threads_before + LOOKUP_THREADS
    # At most the pooled database connections are left (PostgreSQL: sockets).
    assert sockets_after - sockets_before <= 12


def _sockets() -> int:
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


def test_out_of_files_is_survived_and_every_caller_served_after(
    environ: dict[str, str], database_url: str
) -> None:
    """accept() failing (EMFILE: too many open files) does not end the server: it logs, backs
    off, and serves the callers waiting in the backlog once sessions free their sockets."""
    command = ["prlimit", "--nofile=40:40", CALLCENTER, "fastagi", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", "0"], stderr=subprocess.PIPE, env=environ)
    assert process.stderr is not None
    stderr = process.stderr
    log: list[str] = []
    port = 0
    for raw in stderr:
        log.append(raw.decode("utf-8", "replace"))
        if match := LISTENING.search(log[-1]):
            port = int(match[1])
            break
    assert port, "".join(log)
    drain = threading.Thread(
        target=lambda: log.extend(raw.decode("utf-8", "replace") for raw in stderr), daemon=True
    )
    drain.start()
    uniqueids = [f"1795920000.{n}" for n in range(60)]
    barrier = threading.Barrier(len(uniqueids))

    def one(uniqueid: str) -> list[str]:
        barrier.wait()
        scenario = Scenario(FAST.with_uniqueid(uniqueid), fastagi=True, prompt_delay=0.5)
        return converse(port, scenario)

    try:
        with ThreadPoolExecutor(max_workers=len(uniqueids)) as pool:
            results = dict(zip(uniqueids, pool.map(one, uniqueids), strict=True))
        after = converse(port, Scenario(FAST.with_uniqueid("1795920099.1"), fastagi=True))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        drain.join(timeout=10)
        stderr.close()
        text = "".join(log)

    assert "FastAGI accept failed ([Errno 24] Too many open files)" in text
    for uniqueid, sent in results.items():
        # Short of files the look-up may not reach the database: then the caller is unchecked.
        flag = "none" if "lookup=found" in sent[-1] else "unchecked"
        lookup = "found" if flag == "none" else "miss"
        assert sent == expected_commands(uniqueid, flag=flag, priority=10, lookup=lookup), text
    assert after == expected_commands("1795920099.1", flag="none", priority=10, lookup="found")
    assert "1795920099.1" in ivr_runs(database_url)


def test_the_fastagi_command_serves_and_stops_on_sigterm(
    environ: dict[str, str], database_url: str
) -> None:
    process = subprocess.Popen(
        [CALLCENTER, "fastagi", "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert process.stderr is not None
    port = 0
    for raw in process.stderr:
        if match := LISTENING.search(raw.decode()):
            port = int(match[1])
            break
    try:
        sent = converse(port, Scenario(FAST, fastagi=True))
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read().decode()
        process.wait(timeout=60)
        process.stderr.close()

    assert process.returncode == 0
    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert "FastAGI server stopped" in rest
    assert ivr_runs(database_url)[FAST.uniqueid].outcome == "completed"
