"""AMI listener throughput and latency on a synthetic surge shaped like the recorded traces.

Figures (medians of several runs):
* events/s through parser + tracker + store (no socket), on SQLite and on PostgreSQL;
* events/s through the whole listener over a TCP socket (fake Asterisk -> store);
* arrival-to-commit delay, p50 and p99, at a steady 7,500 events/s (50 new calls a second).

PostgreSQL: a throwaway database on CALLCENTER_TEST_POSTGRES_URL's server (as the tests).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url

from callcenter.ami.batch import Batch
from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from callcenter.ami.frames import FrameParser
from callcenter.ami.identity import EventKeys
from callcenter.ami.listener import Listener
from callcenter.ami.spool import Spool
from callcenter.ami.store import CallStore
from callcenter.ami.tracker import CallTracker
from callcenter.db import make_engine, make_sessionmaker
from callcenter.db.migrate import upgrade
from callcenter.gc_tuning import tune_for_throughput
from callcenter.settings import AmiSettings

TRACES = Path(
    os.environ.get(
        "CALLCENTER_TRACES", Path(__file__).resolve().parents[2] / "shared" / "asterisk-traces"
    )
)
POSTGRES_ADMIN_URL = os.environ.get(
    "CALLCENTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
EVENTS = 200_000
CONCURRENT_CALLS = 50
RUNS = 3
_ID = re.compile(rb"\b1795\d{6}\.(\d+)\b")


def call_templates() -> list[list[bytes]]:
    """One Local-channel call and one PJSIP call, as recorded (events only), each event with the
    Timestamp header Asterisk adds as the project configures it (timestampevents = yes)."""
    templates = []
    for name in ("01-answered", "20-pjsip-answered"):
        frames = Recording.load(TRACES / name, stamp=True).frames
        templates.append([c.data for c in frames if c.data.startswith(b"Event: ")])
    return templates


def synthetic_stream(events: int = EVENTS) -> list[bytes]:
    """Calls with fresh Uniqueids, CONCURRENT_CALLS at a time, their frames interleaved."""
    templates = call_templates()
    out: list[bytes] = []
    call = 0
    while len(out) < events:
        group: list[list[bytes]] = []
        for _ in range(CONCURRENT_CALLS):
            template = templates[call % len(templates)]
            replacement = f"{2_000_000_000 + call}.\\1".encode()
            group.append([_ID.sub(replacement, f) for f in template])
            call += 1
        for index in range(max(len(g) for g in group)):
            out.extend(g[index] for g in group if index < len(g))
    return out[:events]


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            yield url
        return
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cc_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def core_rate(url: str, stream: bytes, frames: int) -> float:
    """Parser + tracker + store, batches of 2,000, no socket: events per second."""
    engine = make_engine(url)
    store = CallStore(make_sessionmaker(engine), pbx=f"bench-{uuid.uuid4().hex[:6]}")
    tracker = CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])
    parser = FrameParser()
    store.start()  # as the listener does (SQLite checkpoints on their own thread)
    start = time.perf_counter()
    batch = Batch()
    keys = EventKeys()
    for offset in range(0, len(stream), 65536):
        parser.push(stream[offset : offset + 65536])
        now = datetime.now(UTC)
        for frame in parser.frames():
            tracked = tracker.feed(frame, now)
            batch.add_tracked(frame, tracked, now, keys)
            if len(batch) >= 2000:
                store.write(batch)
                batch = Batch()
    store.write(batch)
    elapsed = time.perf_counter() - start
    store.close()
    engine.dispose()
    return frames / elapsed


@contextmanager
def asterisk_process(plan: list[list[Chunk]], *, realtime: bool = False) -> Iterator[int]:
    """The fake Asterisk in a process of its own, as a PBX is; yields its port. In a thread of
    the benchmark's process it would take turns on the GIL with the listener it feeds."""
    spawn = multiprocessing.get_context("spawn")
    ports: Any = spawn.Queue()
    done = spawn.Event()
    child = spawn.Process(target=_serve, args=(plan, realtime, ports, done), daemon=True)
    child.start()
    try:
        yield ports.get(timeout=60)
    finally:
        done.set()
        child.join(30)


def _serve(plan: list[list[Chunk]], realtime: bool, ports: Any, done: Any) -> None:
    with FakeAsterisk(plan, realtime=realtime) as fake:
        ports.put(fake.port)
        done.wait()


def listener_settings(port: int) -> AmiSettings:
    return AmiSettings(
        host="127.0.0.1",
        port=port,
        secret=SecretStr("ttu112secret"),
        pbx_name=f"bench-{uuid.uuid4().hex[:6]}",
        ping_interval_seconds=5.0,
    )


def socket_rate(url: str, frames: list[bytes]) -> float:
    """The whole listener: fake Asterisk (another process) over TCP -> session -> queue ->
    tracker -> store."""
    engine = make_engine(url)
    with (
        asterisk_process([coalesce([Chunk(f) for f in frames])]) as port,
        tempfile.TemporaryDirectory() as spool,
    ):
        settings = listener_settings(port)
        store = CallStore(make_sessionmaker(engine), pbx=settings.pbx_name)
        listener = Listener(settings, store, Spool(Path(spool), 1 << 30), stop_at_eof=True)
        start = time.perf_counter()
        listener.start()
        listener.wait()
        elapsed = time.perf_counter() - start
    engine.dispose()
    assert listener.counters.frames == len(frames), "the benchmark lost frames"
    return len(frames) / elapsed


def latency(
    url: str, frames: list[bytes], rate: int = 7500, seconds: float = 8.0
) -> tuple[float, float]:
    """Arrival-to-commit delay at a steady rate: (p50, p99) in milliseconds."""
    tick = 0.01
    per_tick = int(rate * tick)
    count = int(rate * seconds)
    chunks = [
        Chunk(b"".join(frames[i : i + per_tick]), at=(i // per_tick) * tick)
        for i in range(0, count, per_tick)
    ]
    delays: list[float] = []
    engine = make_engine(url)
    with (
        asterisk_process([chunks], realtime=True) as port,
        tempfile.TemporaryDirectory() as spool,
    ):
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
    delays.sort()
    return delays[len(delays) // 2] * 1000, delays[int(len(delays) * 0.99)] * 1000


def main() -> None:
    tune_for_throughput()  # as the running listener does (AmiRuntime.start)
    frames = synthetic_stream()
    stream = b"".join(frames)
    calls = sum(1 for f in frames if f.startswith(b"Event: Newchannel") and b"ChannelState: 4" in f)
    print(f"AMI benchmark: {len(frames):,} events, ~{calls:,} calls, {CONCURRENT_CALLS} concurrent")
    for kind in ("sqlite", "postgresql"):
        with database(kind) as url:
            core = statistics.median(core_rate(url, stream, len(frames)) for _ in range(RUNS))
            print(f"  {kind:10} parse+track+store:       {core:10,.0f} events/s (median of {RUNS})")
            whole = statistics.median(socket_rate(url, frames) for _ in range(RUNS))
            print(
                f"  {kind:10} whole listener over TCP: {whole:10,.0f} events/s (median of {RUNS})"
            )
            p50, p99 = latency(url, frames)
            print(f"  {kind:10} 7,500 ev/s, arrival->commit p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
