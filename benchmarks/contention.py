"""Statistics readers, operators tagging and the AMI listener, all at once (issue 18, item 1).

For each database (a SQLite file, a fresh PostgreSQL database): migrate, seed a year of calls,
start the service as a subprocess (1 API worker), start the AMI listener in a process of its
own fed by the fake Asterisk at a steady 2,000 events/s, and then for DURATION_S:
* 80 statistics readers, each on its keep-alive connection, GET /stats/summary for the year
  in a loop (every call the listener adds changes the figures: each read waits for a refresh);
* 16 operators re-tag their own call in a loop (PUT /classification with If-Match).
Prints errors (any answer but 200, and time-outs), the tag p50/p99, the readers' p50/p99 and
requests/s, and the listener's arrival-to-commit lag p50/p99. Targets: 0 errors, tag p99 under
100 ms, listener lag p99 under 250 ms.

    make bench PARTS=contention
    BENCH_DATABASES=sqlite BENCH_SECONDS=5 python -m benchmarks.contention
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from benchmarks.ami import asterisk_process, database, listener_settings, synthetic_stream
from benchmarks.classification import PASSWORD, login, seed, serve
from callcenter.ami.fake_server import Chunk
from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.models import Call, CallerIdStatus, Classification, Outcome, Role, User
from callcenter.stats import rollup
from callcenter.users.security import hash_password

READERS = 80
TAGGERS = 16
EVENTS_PER_S = 2000
WARMUP_S = 2.0
DURATION_S = float(os.environ.get("BENCH_SECONDS", "10"))
HISTORY_CALLS = int(os.environ.get("BENCH_HISTORY_CALLS", "20000"))
REQUEST_TIMEOUT_S = 60.0
YEAR = ("2025-01-01", "2025-12-31")


@dataclass
class Latencies:
    ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def percentile(self, p: float) -> float:
        ordered = sorted(self.ms) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def seed_history(url: str) -> None:
    """A supervisor and a year of calls, so statistics have something to add up."""
    engine = make_engine(url)
    rng = random.Random(112)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for n in range(HISTORY_CALLS):
        began = start + timedelta(seconds=rng.randrange(365 * 86400))
        answered = rng.random() < 0.8
        rows.append(
            {
                "pbx": "history",
                "uniqueid": f"history.{n}",
                "linkedid": f"history.{n}",
                "channel": "",
                "caller_id_raw": f"0812{n % 3000:07d}",
                "caller_id_name": "",
                "caller_e164": f"+62812{n % 3000:07d}",
                "caller_id_status": CallerIdStatus.valid,
                "outcome": Outcome.answered if answered else Outcome.abandoned_in_queue,
                "started_at": began,
                "ended_at": began + timedelta(seconds=90),
                "operator": f"Operator {n % 16}" if answered else None,
                "wait_seconds": rng.randrange(2, 40),
                "talk_seconds": rng.randrange(20, 300) if answered else None,
                "classification": rng.choice([*Classification, None]) if answered else None,
                "telephony_state": {},
                "gap": False,
                "version": 1,
                "changes": 0,
                "created_at": began,
                "updated_at": began,
            }
        )
    with transaction(make_sessionmaker(engine)) as session:
        for offset in range(0, len(rows), 2000):
            session.execute(insert(Call), rows[offset : offset + 2000])
        session.add(
            User(
                username="boss",
                password_hash=hash_password(PASSWORD),
                role=Role.supervisor,
                display_name="",
                active=True,
                failed_logins=0,
            )
        )
    # A running center has its rollups built: the benchmark measures keeping them fresh.
    rollup.refresh_in_snapshot(engine, timezone="Asia/Makassar", safety=timedelta(minutes=10))
    engine.dispose()


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str, body: bytes = b""
) -> tuple[int, dict[str, str]]:
    writer.write(head.encode() + body)
    lines = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    fields = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:])}
    await reader.readexactly(int(fields["content-length"]))
    return int(lines[0].split()[1]), fields


async def stats_reader(
    port: int, token: str, stop_at: float, measure_from: float, out: Latencies
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"GET /api/v1/stats/summary?from={YEAR[0]}&to={YEAR[1]} HTTP/1.1\r\nHost: bench\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    while (now := time.perf_counter()) < stop_at:
        try:
            status, _ = await asyncio.wait_for(_request(reader, writer, head), REQUEST_TIMEOUT_S)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            out.error(type(exc).__name__)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        if now >= measure_from:
            out.ms.append((time.perf_counter() - now) * 1000)
            if status != 200:
                out.error(str(status))
    writer.close()


async def tagger(
    port: int, token: str, call_id: int, stop_at: float, measure_from: float, out: Latencies
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    etag, n = "", 0
    tags = ("emergency", "prank", "non_emergency")
    while (now := time.perf_counter()) < stop_at:
        body = json.dumps({"classification": tags[n % 3]}).encode()
        n += 1
        head = (
            f"PUT /api/v1/calls/{call_id}/classification HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            + (f"If-Match: {etag}\r\n" if etag else "")
            + f"Content-Length: {len(body)}\r\n\r\n"
        )
        try:
            status, fields = await asyncio.wait_for(
                _request(reader, writer, head, body), REQUEST_TIMEOUT_S
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            out.error(type(exc).__name__)
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            etag = ""
            continue
        if status == 200:
            etag = fields["etag"]
        if now >= measure_from:
            out.ms.append((time.perf_counter() - now) * 1000)
            if status != 200:
                out.error(str(status))
        # An operator tags, reads, thinks: not a tight loop.
        await asyncio.sleep(0.05)
    writer.close()


async def load(
    port: int, boss: str, operators: list[str], call_ids: list[int]
) -> tuple[Latencies, Latencies]:
    reads, tags = Latencies(), Latencies()
    start = time.perf_counter()
    measure_from, stop_at = start + WARMUP_S, start + WARMUP_S + DURATION_S
    await asyncio.gather(
        *(stats_reader(port, boss, stop_at, measure_from, reads) for _ in range(READERS)),
        *(
            tagger(port, token, call_id, stop_at, measure_from, tags)
            for token, call_id in zip(operators, call_ids, strict=True)
        ),
    )
    return reads, tags


def _listen(url: str, port: int, results: Any) -> None:
    """In a process of its own, as `callcenter ami` runs: commit lag of every stored event."""
    from callcenter.ami.batch import Batch
    from callcenter.ami.listener import Listener
    from callcenter.ami.spool import Spool
    from callcenter.ami.store import CallStore
    from callcenter.gc_tuning import tune_for_throughput

    tune_for_throughput()
    engine = make_engine(url)
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as spool:
        settings = listener_settings(port)
        store = CallStore(make_sessionmaker(engine), pbx=settings.pbx_name)
        listener = Listener(settings, store, Spool(Path(spool), 1 << 30), stop_at_eof=True)

        def committed(batch: Batch) -> None:
            now = datetime.now(UTC)
            delays.extend((now - e.received_at).total_seconds() for e in batch.events)

        listener.on_stored = committed
        listener.start()
        listener.wait()
    engine.dispose()
    results.put(sorted(delays))


def bench(kind: str) -> None:
    seconds = WARMUP_S + DURATION_S + 2.0
    frames = synthetic_stream(int(EVENTS_PER_S * seconds))
    tick = 0.01
    per_tick = int(EVENTS_PER_S * tick)
    chunks = [
        Chunk(b"".join(frames[i : i + per_tick]), at=(i // per_tick) * tick)
        for i in range(0, len(frames), per_tick)
    ]
    spawn = multiprocessing.get_context("spawn")
    with database(kind) as url:
        call_ids = seed(url)
        seed_history(url)
        with serve(url, 1) as api_port:
            operators = [login(api_port, f"op{n}") for n in range(TAGGERS)]
            boss = login(api_port, "boss")
            results = spawn.Queue()
            with asterisk_process([chunks], realtime=True) as ami_port:
                listener = spawn.Process(target=_listen, args=(url, ami_port, results))
                listener.start()
                reads, tags = asyncio.run(load(api_port, boss, operators, call_ids))
                delays: list[float] = results.get(timeout=300)
                listener.join(60)
    lag50 = delays[len(delays) // 2] * 1000 if delays else float("nan")
    lag99 = delays[int(len(delays) * 0.99)] * 1000 if delays else float("nan")
    errors = {f"stats {k}": v for k, v in reads.errors.items()} | {
        f"tag {k}": v for k, v in tags.errors.items()
    }
    print(
        f"  {kind:8} {READERS} readers: {len(reads.ms) / DURATION_S:6.0f} req/s"
        f"  p50 {reads.percentile(0.5):7.1f} ms  p99 {reads.percentile(0.99):7.1f} ms\n"
        f"  {kind:8} {TAGGERS} taggers: {len(tags.ms) / DURATION_S:6.0f} req/s"
        f"  p50 {tags.percentile(0.5):7.1f} ms  p99 {tags.percentile(0.99):7.1f} ms"
        " (target < 100)\n"
        f"  {kind:8} listener {EVENTS_PER_S} ev/s: {len(delays):,} events stored,"
        f" lag p50 {lag50:6.1f} ms  p99 {lag99:6.1f} ms (target < 250)\n"
        f"  {kind:8} errors: {errors or 'none'}",
        flush=True,
    )


def main() -> None:
    for kind in os.environ.get("BENCH_DATABASES", "sqlite,postgres").split(","):
        bench(kind.strip())


if __name__ == "__main__":
    main()
