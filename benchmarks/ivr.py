"""IVR benchmark: FastAGI session time under 20 concurrent calls, process-AGI start-up, then
the burst (benchmarks/ivr_burst.py).

Figures, not a test. Asterisk is played by a scripted client that answers every command at
once (prompts "play" in zero time), so a session's time is the IVR's own: fork, AGI
environment, commands, and the caller look-up in an embedded SQLite database (or
BENCH_DATABASE_URL). Run: python -m benchmarks.ivr
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

CALLCENTER = str(Path(sys.executable).parent / "callcenter")
CONCURRENT = 20
ROUNDS = 5
STARTUPS = 10


def env_block(uniqueid: str, callerid: str = "081234567890") -> bytes:
    """An agi_* block shaped like the recorded ones (shared/asterisk-traces)."""
    lines = {
        "agi_network": "yes",
        "agi_network_script": "ivr",
        "agi_request": "agi://127.0.0.1:4573/ivr",
        "agi_channel": "PJSIP/trunk-0000000c",
        "agi_language": "en",
        "agi_type": "PJSIP",
        "agi_uniqueid": uniqueid,
        "agi_version": "22.10.1",
        "agi_callerid": callerid,
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_context": "from-pstn",
        "agi_extension": "112",
        "agi_priority": "5",
        "agi_arg_1": callerid,
    }
    return "".join(f"{key}: {value}\n" for key, value in lines.items()).encode() + b"\n"


def reply(command: bytes) -> bytes:
    if command.startswith(b"STREAM FILE"):
        return b"200 result=0 endpos=35200\n"
    if command.startswith(b"CHANNEL STATUS"):
        return b"200 result=6\n"
    if command.startswith(b"ANSWER"):
        return b"200 result=0\n"
    return b"200 result=1\n"


def fastagi_session(port: int, uniqueid: str) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as conn, conn.makefile("rb") as reader:
        last = started
        conn.sendall(env_block(uniqueid))
        while line := reader.readline():
            last = time.perf_counter()
            try:
                conn.sendall(reply(line))
            except OSError:
                break
    return last - started


def write(stream: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError):  # the IVR may close first
        stream.write(data)
        stream.flush()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def fastagi_server(environ: dict[str, str]) -> Iterator[tuple[int, int]]:
    """`callcenter fastagi` on a free port: (its pid, its port); stopped (SIGTERM) at the end,
    which lets running sessions record their runs."""
    server = subprocess.Popen(
        [CALLCENTER, "fastagi", "--host", "127.0.0.1", "--port", "0"],
        stderr=subprocess.PIPE,
        env=environ,
    )
    assert server.stderr is not None
    port = 0
    for raw in server.stderr:
        if match := re.search(rb"listening on 127\.0\.0\.1:(\d+)", raw):
            port = int(match[1])
            break
    lines: list[bytes] = []
    drain = threading.Thread(target=lambda: lines.extend(server.stderr or []), daemon=True)
    drain.start()
    try:
        yield server.pid, port
    finally:
        server.terminate()
        server.wait()
        drain.join()
        server.stderr.close()


def bench_fastagi(environ: dict[str, str]) -> None:
    with fastagi_server(environ) as (_pid, port):
        durations: list[float] = []
        p50s = []
        with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
            for round_ in range(ROUNDS):
                ids = [f"1795900000.{round_ * CONCURRENT + n}" for n in range(CONCURRENT)]
                times = list(pool.map(lambda uid: fastagi_session(port, uid), ids))
                p50s.append(statistics.median(times))
                durations += times
        print(
            f"FastAGI session connect->last command, {CONCURRENT} concurrent, "
            f"{len(durations)} sessions: p50 {statistics.median(durations) * 1000:.1f} ms, "
            f"p99 {percentile(durations, 0.99) * 1000:.1f} ms "
            f"(median of per-round p50s {statistics.median(p50s) * 1000:.1f} ms)"
        )
    print(f"  look-ups (ivr_runs.lookup_status): {lookup_statuses(environ)}")


def lookup_statuses(environ: dict[str, str]) -> dict[str, int]:
    """How many look-ups answered in time: a miss is a caller queued without the check."""
    from benchmarks.soak.account import ivr_runs

    return ivr_runs(environ["CALLCENTER_DATABASE_URL"])


def bench_process_startup(environ: dict[str, str]) -> None:
    startups = []
    for n in range(STARTUPS):
        started = time.perf_counter()
        process = subprocess.Popen(
            [CALLCENTER, "agi"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environ,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        stdin, stdout = process.stdin, process.stdout
        stdin.write(env_block(f"1795800000.{n}"))
        stdin.flush()
        first = stdout.readline()  # ANSWER: the caller stops hearing silence here
        startups.append(time.perf_counter() - started)

        write(stdin, reply(first))
        while line := stdout.readline():
            write(stdin, reply(line))
        stdin.close()
        process.wait()
        stdout.close()
    print(
        f"process AGI start-up (exec -> first command), median of {STARTUPS}: "
        f"{statistics.median(startups) * 1000:.0f} ms "
        f"(min {min(startups) * 1000:.0f}, max {max(startups) * 1000:.0f})"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{scratch}/bench.db"
        environ = {
            **os.environ,
            "CALLCENTER_DATABASE_URL": url,
            "CALLCENTER_LOG_LEVEL": "INFO",  # the server announces its port at INFO
            "CALLCENTER_FASTAGI__MAX_SESSIONS": "64",
        }
        subprocess.run([CALLCENTER, "migrate"], env=environ, check=True, capture_output=True)
        print(f"IVR benchmark on {url.split(':', 1)[0]}")
        bench_fastagi(environ)
        bench_process_startup(environ)
    # The burst: 10 and 25 calls/s with real prompt lengths, on SQLite and PostgreSQL.
    from benchmarks import ivr_burst

    ivr_burst.main()


if __name__ == "__main__":
    main()
