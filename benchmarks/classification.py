"""PUT /api/v1/calls/{id}/classification under load, against the real service.

For each database (a SQLite file, a fresh PostgreSQL database): migrate, create 16 operators and
their calls, start the service as a subprocess on a free port, then 16 concurrent clients (one
keep-alive connection each, in this process, on an asyncio HTTP/1.1 client small enough not to
be the bottleneck) re-classify their own call for 10 s, each sending the ETag it last got as
If-Match, exactly as an operator's browser would. Prints requests/s, p50 and p99 latency: the
median of 3 runs.

    python -m benchmarks.classification            # both databases, 1 and 2 API workers
    BENCH_DATABASES=sqlite python -m benchmarks.classification
    BENCH_WORKERS=2 python -m benchmarks.classification   # only 2 workers (default "1,2")

Two workers is `callcenter serve --workers 2` (the API alone; the listener runs as
`callcenter ami`). Access logging is off (`--no-access-log`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.db.migrate import upgrade
from callcenter.models import Call, CallerIdStatus, Outcome, Role, User
from callcenter.users.security import hash_password

CLIENTS = 16
DURATION_S = 10.0
WARMUP_S = 1.5
CONNECT_STAGGER_S = 0.02  # 16 connections over 0.3 s, inside the warm-up
RUNS = 3
PASSWORD = "benchmark password"
TAGS = ("emergency", "prank", "non_emergency")
POSTGRES_ADMIN_URL = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class RunResult:
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def seed(url: str) -> list[int]:
    """Migrate, then one operator and one untagged call per client. Returns the call ids."""
    engine = make_engine(url)
    upgrade(engine)
    password_hash = hash_password(PASSWORD)
    now = datetime.now(UTC)
    with transaction(make_sessionmaker(engine)) as session:
        calls = []
        for n in range(CLIENTS):
            session.add(
                User(
                    username=f"op{n}",
                    password_hash=password_hash,
                    role=Role.operator,
                    display_name="",
                    active=True,
                    failed_logins=0,
                )
            )
            call = Call(
                pbx="bench",
                uniqueid=f"bench.{n}",
                linkedid=f"bench.{n}",
                caller_id_raw="081234567890",
                caller_e164="+6281234567890",
                caller_id_status=CallerIdStatus.valid,
                outcome=Outcome.answered,
                started_at=now,
                telephony_state={},
            )
            session.add(call)
            calls.append(call)
        session.flush()
        ids = [call.id for call in calls]
    engine.dispose()
    return ids


@contextmanager
def serve(url: str, workers: int) -> Iterator[int]:
    """The real service (uvicorn with the app) as a subprocess; yields its port."""
    port = free_port()
    env = os.environ | {
        "CALLCENTER_DATABASE_URL": url,
        "CALLCENTER_LOG_LEVEL": "WARNING",
        "CALLCENTER_TOKEN_SECRET": "benchmark-" + "s" * 32,
        "CALLCENTER_AMI__ENABLED": "false",
        "CALLCENTER_FASTAGI__ENABLED": "false",
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "callcenter.app:create_app"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--no-access-log", "--log-level", "warning"),
            *("--workers", str(workers)),
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the service did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def login(port: int, username: str) -> str:
    form = urllib.parse.urlencode({"username": username, "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/auth/token", data=form) as reply:
        token: str = json.load(reply)["access_token"]
        return token


async def client(
    port: int,
    token: str,
    call_id: int,
    stop_at: float,
    measure_from: float,
    result: RunResult,
    connect_after: float,
) -> None:
    # Operators' browsers connect at different moments. Sixteen connections opened in the same
    # millisecond would all land on whichever API worker woke first (it accepts every pending
    # connection in one go), which no real center sees; connecting is part of the warm-up.
    await asyncio.sleep(connect_after)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    etag = ""
    n = 0
    while (now := time.perf_counter()) < stop_at:
        body = json.dumps({"classification": TAGS[n % len(TAGS)]}).encode()
        n += 1
        head = (
            f"PUT /api/v1/calls/{call_id}/classification HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            + (f"If-Match: {etag}\r\n" if etag else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        headers = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        status = int(headers[0].split()[1])
        fields = {k.lower(): v for k, _, v in (line.partition(": ") for line in headers[1:])}
        await reader.readexactly(int(fields["content-length"]))
        if now < measure_from:
            continue
        result.latencies_ms.append((time.perf_counter() - now) * 1000)
        if status == 200:
            result.requests += 1
            etag = fields["etag"]
        else:
            result.errors[status] = result.errors.get(status, 0) + 1
    writer.close()


async def load(port: int, tokens: list[str], call_ids: list[int]) -> RunResult:
    result = RunResult()
    start = time.perf_counter()
    measure_from, stop_at = start + WARMUP_S, start + WARMUP_S + DURATION_S
    await asyncio.gather(
        *(
            client(port, token, call_id, stop_at, measure_from, result, n * CONNECT_STAGGER_S)
            for n, (token, call_id) in enumerate(zip(tokens, call_ids, strict=True))
        )
    )
    result.seconds = time.perf_counter() - measure_from
    return result


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cc_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def bench(kind: str, workers: int) -> None:
    with database(kind) as url:
        call_ids = seed(url)
        runs = []
        with serve(url, workers) as port:
            tokens = [login(port, f"op{n}") for n in range(CLIENTS)]
            for _ in range(RUNS):
                result = asyncio.run(load(port, tokens, call_ids))
                runs.append(result)
                p50, p99 = result.percentile(0.5), result.percentile(0.99)
                print(
                    f"  {kind:8} x{workers} run: {result.rate:7.0f} req/s  p50 {p50:5.1f} ms"
                    f"  p99 {p99:5.1f} ms  errors {result.errors or 'none'}",
                    flush=True,
                )
    rate = statistics.median(r.rate for r in runs)
    p50 = statistics.median(r.percentile(0.5) for r in runs)
    p99 = statistics.median(r.percentile(0.99) for r in runs)
    print(
        f"classification PUT, {kind}, {workers} API worker{'s' if workers > 1 else ''}, "
        f"{CLIENTS} clients x {DURATION_S:.0f} s, median of {RUNS}: "
        f"{rate:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms",
        flush=True,
    )


def main() -> None:
    for workers in os.environ.get("BENCH_WORKERS", "1,2").split(","):
        for kind in os.environ.get("BENCH_DATABASES", "sqlite,postgres").split(","):
            bench(kind.strip(), int(workers))


if __name__ == "__main__":
    main()
