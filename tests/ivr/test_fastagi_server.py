"""`callcenter fastagi` over real TCP sockets, fed the recorded Asterisk lines (FastAGI)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.ivr.fake_asterisk import RecordedSession, Scenario, expected_commands, session
from tests.ivr.harness import CALLCENTER, ivr_environ, ivr_runs, seed_pranks

FAST = session("05-hangup-in-ivr", "fastagi")  # 085237001122, agi_network block
WITHHELD = session("10-callerid-edge-cases", "agi-process", 1)  # no caller ID at all
# A carrier's withheld caller (Privacy: id): the asserted number, agi_callingpres: 32.
PRIVATE = session("24-pjsip-operator-hangup-withheld", "fastagi")
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


@dataclasses.dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: list[str]
    drain: threading.Thread

    def stop(self) -> str:
        """SIGTERM: the server lets running sessions finish (and record) before it exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.drain.join(timeout=10)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return "".join(self.log)


def start_server(environ: dict[str, str], *extra: str) -> Server:
    command = [CALLCENTER, "fastagi", "--host", "127.0.0.1", "--port", "0", *extra]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=environ)
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

    def drain() -> None:
        log.extend(raw.decode("utf-8", "replace") for raw in stderr)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return Server(process, port, log, thread)


@pytest.fixture
def server(environ: dict[str, str]) -> Iterator[Server]:
    running = start_server(environ)
    yield running
    if running.process.poll() is None:
        running.process.kill()
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


def test_full_server_refuses_at_once_so_the_dialplan_queues(
    environ: dict[str, str], database_url: str
) -> None:
    running = start_server(environ, "--max-sessions", "1")
    try:
        with (
            socket.create_connection(("127.0.0.1", running.port), timeout=60) as held,
            held.makefile("rb") as reader,
        ):
            held.sendall(b"".join(FAST.env))
            assert reader.readline() == b"ANSWER\n"  # the one slot is taken from here on

            second = Scenario(FAST.with_uniqueid("1795900099.1"), fastagi=True)
            # Closed unread: Asterisk sees EOF or a reset; either way AGI() fails at once.
            with contextlib.suppress(ConnectionResetError):
                converse(running.port, second)
            assert second.sent == []

            rest: Callable[[], bytes] = reader.readline
            finish = Scenario(FAST, fastagi=True)
            finish.sent.append("ANSWER")
            held.sendall(b"200 result=0\n")
            finish.env = dataclasses.replace(FAST, env=[])
            sent = finish.converse(rest, held.sendall)
    finally:
        log = running.stop()

    assert sent == expected_commands(FAST.uniqueid, flag="none", priority=10, lookup="found")
    assert "all 1 FastAGI sessions busy" in log
    assert set(ivr_runs(database_url)) == {FAST.uniqueid}
