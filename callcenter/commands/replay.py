"""`callcenter replay PATH`: a recorded AMI stream through the real listener into the database.

PATH is an ami.raw, a trace folder, or a folder of trace folders. Each recording is served by
the fake Asterisk on a local port, and the listener runs against it until the stream ends.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from callcenter.ami.fake_server import FakeAsterisk, Recording, coalesce
from callcenter.ami.runtime import AmiRuntime
from callcenter.db import make_engine, migrate
from callcenter.settings import get_settings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay", help="replay recorded AMI traffic (ami.raw) through the listener"
    )
    parser.add_argument("path", type=Path, help="an ami.raw, a trace folder, or a folder of them")
    parser.add_argument(
        "--realtime", action="store_true", help="pace frames by the times in ami.jsonl"
    )
    parser.add_argument(
        "--now",
        action="store_true",
        help="date the recording as if it ended just now (gaps kept), e.g. so its abandoned "
        "calls are on today's call-back worklist",
    )
    parser.add_argument(
        "--no-timestamps",
        action="store_true",
        help="serve the bytes exactly as recorded (calls are then dated by arrival)",
    )
    parser.set_defaults(func=run)


def recordings(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if (path / "ami.raw").exists():
        return [path]
    found = sorted(p.parent for p in path.glob("*/ami.raw"))
    if not found:
        raise SystemExit(f"no ami.raw at or under {path}")
    return found


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    engine.dispose()
    ami = settings.ami
    for path in recordings(args.path):
        if args.now and args.no_timestamps:
            raise SystemExit(
                "--now dates the frames' Timestamps: it cannot go with --no-timestamps"
            )
        end_at = time.time() if args.now else None
        recording = Recording.load(path, stamp=not args.no_timestamps, end_at=end_at)
        frames = recording.frames if args.realtime else coalesce(recording.frames)
        with FakeAsterisk(
            [frames],
            username=ami.username,
            secret=ami.secret.get_secret_value(),
            greeting=recording.greeting,
            realtime=args.realtime,
        ) as fake:
            runtime = AmiRuntime(settings, stop_at_eof=True, port=fake.port)
            runtime.start()
            runtime.wait()
            runtime.close()
        c = runtime.listener.counters
        tracked = len(runtime.listener.tracker.finished) + len(runtime.listener.tracker.calls)
        print(  # noqa: T201
            f"{path}: {c.frames} frames, {tracked} calls, {c.stored_events} events stored"
            + (f", {c.spooled_batches} batches spooled" if c.spooled_batches else "")
        )
    return 0
