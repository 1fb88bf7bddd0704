"""`make soak`: the backend under a simulated PBX for SOAK_SECONDS (default 600), a fault every
SOAK_FAULT_SECONDS (default 60) in turn, then every generated call accounted for.

    SOAK_SECONDS=3600 make soak          (the release check)
    python -m benchmarks.soak --database sqlite --seconds 120 --rate 20

Exit status 1 when a call is lost, duplicated or has the wrong outcome. The figures are only
as good as the machine is quiet: say what else ran.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.soak import faults, pbx
from benchmarks.soak.account import (
    Accounting,
    CommitLatency,
    ivr_runs,
    read_record,
    stored_calls,
)
from benchmarks.soak.backend import CALLCENTER, Backend
from benchmarks.soak.postgres import OwnPostgres

PBX_NAME = "soak"
SECRET = "soak-ami-secret"
SPOOL_MIB = 256
SETTLE_SECONDS = 600  # at most, for the listener to catch up once the PBX is done


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def options(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(env("SOAK_SECONDS", "600")))
    parser.add_argument("--rate", type=float, default=float(env("SOAK_RATE", "50")))
    parser.add_argument("--fault-every", type=float, default=float(env("SOAK_FAULT_SECONDS", "60")))
    parser.add_argument(
        "--outage",
        type=float,
        default=float(env("SOAK_OUTAGE_SECONDS", "10")),
        help="seconds the database stays away in the PostgreSQL and disk-full faults",
    )
    parser.add_argument(
        "--database", choices=("postgresql", "sqlite"), default=env("SOAK_DATABASE", "postgresql")
    )
    parser.add_argument("--faults", default=env("SOAK_FAULTS", ",".join(faults.KINDS)))
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args(argv)


def environment(work: Path, url: str, ami: int, agi: int) -> dict[str, str]:
    """The backend's settings: its own data folder, spool, ports and PBX name."""
    return {
        **os.environ,
        "CALLCENTER_DATABASE_URL": url,
        "CALLCENTER_DATA_DIR": str(work / "data"),
        "CALLCENTER_LOG_FORMAT": "json",
        "CALLCENTER_LOG_LEVEL": "WARNING",
        "CALLCENTER_AMI__ENABLED": "true",
        "CALLCENTER_AMI__HOST": "127.0.0.1",
        "CALLCENTER_AMI__PORT": str(ami),
        "CALLCENTER_AMI__SECRET": SECRET,
        "CALLCENTER_AMI__PBX_NAME": PBX_NAME,
        "CALLCENTER_AMI__SPOOL_DIR": str(work / "spool"),
        "CALLCENTER_AMI__CDR_TIMEZONE": "UTC",
        "CALLCENTER_FASTAGI__ENABLED": "true",
        "CALLCENTER_FASTAGI__HOST": "127.0.0.1",
        "CALLCENTER_FASTAGI__PORT": str(agi),
        "CALLCENTER_METRICS__ENABLED": "false",
    }


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    kinds = [k for k in args.faults.split(",") if k]
    unknown = set(kinds) - set(faults.KINDS)
    if unknown:
        raise SystemExit(f"unknown faults {sorted(unknown)}: choose from {faults.KINDS}")
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    os.chmod(work, 0o755)
    postgres: OwnPostgres | None = None
    small_fs = False
    commands = None
    child = None
    backend: Backend | None = None
    ok = False
    try:
        if args.database == "postgresql":
            postgres = OwnPostgres(work / "pg", free_port())
            postgres.start()
            url = postgres.url
        else:
            url = f"sqlite:///{work}/soak.db"
        small_fs = faults.mount_small_fs(work / "spool", SPOOL_MIB)
        agi_port = free_port()
        spawn = multiprocessing.get_context("spawn")
        commands, theirs = spawn.Pipe()
        child = spawn.Process(
            target=pbx.serve, args=(theirs, str(work), args.rate, agi_port, SECRET), daemon=True
        )
        environ = environment(work, url, 0, agi_port)
        subprocess.run([CALLCENTER, "migrate"], env=environ, check=True, capture_output=True)
        since = datetime.now(UTC)
        child.start()
        ami_port = commands.recv()
        environ["CALLCENTER_AMI__PORT"] = str(ami_port)
        backend = Backend(environ, free_port(), work / "backend.log")
        print(
            f"soak: {args.seconds:.0f} s, {args.rate:g} calls/s, a fault every "
            f"{args.fault_every:.0f} s ({', '.join(kinds)}), {args.database}, work {work}",
            flush=True,
        )
        ok = run(args, kinds, work, url, since, postgres, small_fs, commands, backend)
        return 0 if ok else 1
    finally:
        if backend is not None and backend.process is not None and backend.process.poll() is None:
            backend.kill()
        if commands is not None and child is not None and child.is_alive():
            commands.send("exit")
            child.join(10)
        if postgres is not None:
            postgres.destroy()
        if small_fs:
            faults.unmount(work / "spool")
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}")


def run(
    args: argparse.Namespace,
    kinds: list[str],
    work: Path,
    url: str,
    since: datetime,
    postgres: OwnPostgres | None,
    small_fs: bool,
    commands: object,
    backend: Backend,
) -> bool:
    backend.start()
    latency = CommitLatency(url, PBX_NAME)
    latency.start()
    faults.ask_pbx(commands, "go")
    started = time.monotonic()
    memory: list[tuple[float, int, float, str]] = [(0.0, backend.pid, backend.rss(), "start")]
    target = faults.Target(
        pbx=commands,
        backend=backend,
        postgres=postgres,
        database_url=url,
        spool=work / "spool",
        spool_is_small_fs=small_fs,
        outage_seconds=args.outage,
        memory=memory,
        started=started,
    )
    done: list[str] = []
    crashes = 0
    next_fault, next_sample, turn = args.fault_every, 60.0, 0
    while (elapsed := time.monotonic() - started) < args.seconds:
        if backend.process is not None and backend.process.poll() is not None:
            crashes += 1
            log(f"{elapsed:6.0f} s  the backend died on its own ({backend.process.returncode})")
            backend.start()
        if elapsed >= next_sample:
            memory.append((elapsed, backend.pid, backend.rss(), "minute"))
            sent = faults.ask(target, "stats")
            log(f"{elapsed:6.0f} s  {sent.calls:,} calls, {sent.events:,} events sent, "
                f"{latency.seen:,} committed; backend RSS {memory[-1][2]:.0f} MiB")  # fmt: skip
            next_sample += 60
        if kinds and elapsed >= next_fault:
            kind = kinds[turn % len(kinds)]
            turn += 1
            what = faults.FAULTS[kind](target)
            done.append(what)
            log(f"{elapsed:6.0f} s  {what}")
            next_fault += args.fault_every
        time.sleep(0.5)
    log(f"{time.monotonic() - started:6.0f} s  no new calls; finishing the calls under way")
    stats = faults.ask(target, "stop")
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline and not latency.quiet_for(5):
        pass
    memory.append((time.monotonic() - started, backend.pid, backend.rss(), "end"))
    record = read_record(work / "record.tsv")
    live = Accounting.of(record, stored_calls(url, PBX_NAME))
    latency.stop()
    backend.stop()
    reconciled = subprocess.run(
        [
            CALLCENTER, "reconcile", "--since", since.isoformat(),
            "--queue-log", str(work / "queue_log"), "--cdr", str(work / "Master.csv"),
            "--cel", str(work / "cel.jsonl"),
        ],
        env=backend.environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
    final = Accounting.of(record, stored_calls(url, PBX_NAME))
    runs = ivr_runs(url)
    report(
        args, stats, latency, memory, live, reconciled.stdout.strip(), final, crashes, done, runs
    )
    return final.ok and crashes == 0


def log(line: str) -> None:
    print(line, flush=True)


def report(
    args: argparse.Namespace,
    stats: pbx.PbxStats,
    latency: CommitLatency,
    memory: list[tuple[float, int, float, str]],
    live: Accounting,
    reconciled: str,
    final: Accounting,
    crashes: int,
    done: list[str],
    runs: dict[str, int],
) -> None:
    log("")
    log(f"calls generated {stats.calls:,} ({stats.events:,} AMI events sent); "
        f"PBX behind its clock at most {stats.max_lag_ms:.0f} ms; events waiting for the "
        f"listener at most {stats.most_waiting_mib:.1f} MiB; listener dropped for reading too "
        f"slowly: {stats.dropped_slow}")  # fmt: skip
    errors = ", ".join(f"{k} {v}" for k, v in sorted(stats.agi_errors.items())) or "none"
    log(f"FastAGI sessions: {stats.agi_served:,} served, {stats.agi_refused:,} refused "
        f"(backend down), errors: {errors}")  # fmt: skip
    log(f"IVR runs recorded: {sum(runs.values()):,} (look-up: {runs})")
    log(f"faults injected: {len(done)}; backend crashes (died on its own): {crashes}")
    log(f"listener alone:     {live.line()}")
    log(f"reconcile:          {reconciled or '(nothing printed)'}")
    log(f"after reconcile:    {final.line()}")
    for uniqueid, want, got in final.wrong[:20]:
        log(f"  wrong outcome: {uniqueid} expected {want}, stored {got}")
    log(f"event-to-commit latency ({latency.seen:,} events seen committed, poll 50 ms): "
        f"p50 {latency.percentile(0.5)} ms, p95 {latency.percentile(0.95)} ms, "
        f"p99 {latency.percentile(0.99)} ms, max {latency.percentile(1.0)} ms")  # fmt: skip
    log("backend memory (RSS):")
    for seconds, pid, rss, when in memory:
        log(f"  {seconds:6.0f} s  pid {pid:<7} {rss:7.1f} MiB  {when}")
    log("RESULT: " + ("PASS" if final.ok and crashes == 0 else "FAIL"))


if __name__ == "__main__":
    sys.exit(main())
