"""IVR burst benchmark: callers arriving at 10 and 25 a second for a minute, prompts that take
as long to play as the ones `make prompts` makes. Figures, not a test.

A scripted Asterisk (asyncio, one process) opens one FastAGI session per call on schedule,
answers every command at once except STREAM FILE, which it answers after the prompt's real
duration. One caller in ten has a number tagged prank often enough to be flagged. Printed per
rate and database: sessions served / skipped (IVR_SKIPPED=busy) / failed, first command after
the AGI environment (p50, p99; the cold first call apart), look-up time (p50, p99) against the
deadline, flagged callers warned, and the server's memory; then the memory of 1,000 sessions
held open at once.

    python -m benchmarks.ivr_burst          (BENCH_IVR_SECONDS=60, BENCH_IVR_RATES="10 25")
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.ivr import env_block, fastagi_server, percentile
from callcenter.settings import IvrSettings, get_settings

CALLCENTER = str(Path(sys.executable).parent / "callcenter")
FLAGGED = "081299990000"
FLAGGED_E164 = "+6281299990000"


def prompt_seconds(ivr: IvrSettings) -> dict[str, float]:
    """Prompt name → seconds, measured on the WAV files `make prompts` makes."""
    from callcenter.ivr.prompts import make_prompts

    names = ivr.prompts.model_dump()
    with tempfile.TemporaryDirectory() as out:
        durations = {}
        for path in make_prompts(ivr, Path(out)):
            with wave.open(str(path)) as audio:
                seconds = audio.getnframes() / audio.getframerate()
            name = str(path.relative_to(out)).removesuffix(".wav")
            durations[name] = seconds
    return {name: durations.get(name, 0.0) for name in names.values()}


@dataclass
class Session:
    callerid: str
    first_command: float | None = None  # seconds from the environment sent to the first line
    commands: list[str] = field(default_factory=list)
    error: str = ""


async def play_asterisk(
    port: int, uniqueid: str, callerid: str, prompts: dict[str, float]
) -> Session:
    session = Session(callerid)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        session.error = type(exc).__name__
        return session
    try:
        writer.write(env_block(uniqueid, callerid))
        await writer.drain()
        sent = time.perf_counter()
        while line := await reader.readline():
            if session.first_command is None:
                session.first_command = time.perf_counter() - sent
            command = line.decode().rstrip("\n")
            session.commands.append(command)
            if command.startswith("STREAM FILE"):
                await asyncio.sleep(prompts.get(command.split()[2], 0.0))
                reply = b"200 result=0 endpos=35200\n"
            elif command.startswith("CHANNEL STATUS"):
                reply = b"200 result=6\n"
            elif command.startswith("ANSWER"):
                reply = b"200 result=0\n"
            else:
                reply = b"200 result=1\n"
            writer.write(reply)
            await writer.drain()
    except OSError as exc:
        session.error = type(exc).__name__
    finally:
        writer.close()
    return session


async def burst(
    port: int, rate: float, seconds: float, prompts: dict[str, float], tag: str
) -> list[Session]:
    tasks = []
    started = time.perf_counter()
    for n in range(round(rate * seconds)):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        callerid = FLAGGED if n % 10 == 0 else f"0812{n:08d}"
        tasks.append(asyncio.create_task(play_asterisk(port, f"{tag}.{n}", callerid, prompts)))
    return list(await asyncio.gather(*tasks))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def peak_rss(pid: int) -> Iterator[list[int]]:
    peak = [rss_kib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.1):
            peak[0] = max(peak[0], rss_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def seed_flagged(url: str, count: int) -> None:
    from datetime import timedelta

    from sqlalchemy.orm import Session as DbSession

    from callcenter.db import make_engine, utcnow
    from callcenter.models import Call, CallerIdStatus, Classification, Outcome

    engine = make_engine(url)
    with DbSession(engine) as db, db.begin():
        for _ in range(count):
            uid = uuid.uuid4().hex[:20]
            db.add(
                Call(
                    pbx="ttu-pbx-1",
                    uniqueid=uid,
                    linkedid=uid,
                    caller_id_raw=FLAGGED,
                    caller_e164=FLAGGED_E164,
                    caller_id_status=CallerIdStatus.valid,
                    outcome=Outcome.answered,
                    started_at=utcnow() - timedelta(days=1),
                    classification=Classification.prank,
                )
            )
    engine.dispose()


def lookup_ms(url: str, tag: str) -> tuple[list[int], dict[str, int]]:
    from sqlalchemy import select

    from callcenter.db import make_engine
    from callcenter.ivr.models import IvrRun

    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(IvrRun.lookup_ms, IvrRun.lookup_status, IvrRun.outcome).where(
                IvrRun.uniqueid.like(f"{tag}.%")
            )
        ).all()
    engine.dispose()
    statuses: dict[str, int] = {}
    for _ms, status, outcome in rows:
        key = f"{outcome}/{status}"
        statuses[key] = statuses.get(key, 0) + 1
    return [ms for ms, _status, _outcome in rows if ms is not None], statuses


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p99 = statistics.median(values) * 1000, percentile(values, 0.99) * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def run_rate(
    environ: dict[str, str], rate: float, seconds: float, prompts: dict[str, float]
) -> None:
    url = environ["CALLCENTER_DATABASE_URL"]
    tag = f"{int(rate)}{uuid.uuid4().hex[:6]}"
    with fastagi_server(environ) as (pid, port):
        idle = rss_kib(pid)
        with peak_rss(pid) as peak:
            sessions = asyncio.run(burst(port, rate, seconds, prompts, tag))
        time.sleep(1)  # the last runs are recorded after the call is handed back
    firsts = [s.first_command for s in sessions if s.first_command is not None]
    cold, warm = firsts[:1], firsts[1:]
    served = sum(
        1
        for s in sessions
        if any("CALLER_FLAG" in c for c in s.commands)
        and not any("IVR_SKIPPED" in c for c in s.commands)
    )
    skipped = sum(1 for s in sessions if any("IVR_SKIPPED" in c for c in s.commands))
    failed = sum(1 for s in sessions if not s.commands)
    flagged = [s for s in sessions if s.callerid == FLAGGED]
    warned = sum(1 for s in flagged if any("prank-warning" in c for c in s.commands))
    lookups, statuses = lookup_ms(url, tag)
    print(
        f"  {rate:g} calls/s x {seconds:g} s = {len(sessions)} calls: served {served}, "
        f"skipped {skipped}, failed {failed}; flagged callers warned {warned}/{len(flagged)}"
    )
    print(f"    first command after the environment: {ms(warm)}; the first (cold) call {ms(cold)}")
    print(
        f"    look-up: p50 {statistics.median(lookups) if lookups else 0:.0f} ms, "
        f"p99 {percentile([float(v) for v in lookups], 0.99) if lookups else 0:.0f} ms "
        f"(deadline {get_settings().ivr.lookup_deadline_ms} ms); runs {statuses}"
    )
    print(f"    server memory: idle {idle / 1024:.0f} MiB, peak {peak[0] / 1024:.0f} MiB")


def held_sessions_memory(environ: dict[str, str], count: int = 1000) -> None:
    """`count` sessions all in their greeting at once: memory per session."""
    prompts = dict.fromkeys(get_settings().ivr.prompts.model_dump().values(), 30.0)
    with fastagi_server(environ) as (pid, port):
        idle = rss_kib(pid)

        async def hold() -> None:
            tasks = [
                asyncio.create_task(play_asterisk(port, f"hold.{n}", f"0813{n:08d}", prompts))
                for n in range(count)
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
                if threads >= count:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)
            held = rss_kib(pid)
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
            print(
                f"  {count} sessions held at once ({threads} threads): server memory "
                f"{idle / 1024:.0f} -> {held / 1024:.0f} MiB, "
                f"{(held - idle) / count:.0f} KiB a session"
            )
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(hold())


@contextmanager
def database(kind: str, scratch: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{scratch}/bench-ivr.db"
        return
    from sqlalchemy import text

    from callcenter.db import make_engine

    admin_url = os.environ.get(
        "CALLCENTER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    name = f"bench_ivr_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    seconds = float(os.environ.get("BENCH_IVR_SECONDS", "60"))
    rates = [float(r) for r in os.environ.get("BENCH_IVR_RATES", "10 25").split()]
    prompts = prompt_seconds(get_settings().ivr)
    print(
        "prompt lengths (make prompts): " + ", ".join(f"{k} {v:.1f} s" for k, v in prompts.items())
    )
    for kind in ("sqlite", "postgresql"):
        with tempfile.TemporaryDirectory() as scratch, database(kind, scratch) as url:
            environ = {
                **os.environ,
                "CALLCENTER_DATABASE_URL": url,
                "CALLCENTER_LOG_LEVEL": "INFO",
                "CALLCENTER_DATA_DIR": scratch,
            }
            subprocess.run([CALLCENTER, "migrate"], env=environ, check=True, capture_output=True)
            seed_flagged(url, 3)
            print(f"IVR burst on {kind}")
            for rate in rates:
                run_rate(environ, rate, seconds, prompts)
            if kind == "sqlite":
                held_sessions_memory(environ)


if __name__ == "__main__":
    main()
