"""`callcenter demo`: the backend on a throwaway SQLite file, fed by a simulated PBX.

Recorded Asterisk calls are replayed in a loop, shifted to now, through the real AMI listener,
so the console's board moves within a minute. Demo accounts are printed on start.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import uvicorn

from callcenter.ami.fake_server import Chunk, FakeAsterisk
from callcenter.ami.runtime import AmiRuntime
from callcenter.app import create_app
from callcenter.db import make_engine, make_sessionmaker, migrate, transaction
from callcenter.demo import accounts, feed
from callcenter.incidents import agencies
from callcenter.settings import FastAgiSettings, Settings, get_settings

# Connections the simulated PBX accepts (each listener reconnect gets the loop afresh).
CONNECTIONS = 1000


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the backend with demo accounts and a simulated PBX (SQLite, data/demo)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    parser.set_defaults(func=run)


def demo_settings(data_dir: Path) -> Settings:
    base = get_settings()
    return base.model_copy(
        update={
            "environment": "development",
            "database_url": "",
            "data_dir": data_dir,
            "fastagi": FastAgiSettings(enabled=False),
            "ami": base.ami.model_copy(
                update={"enabled": True, "spool_dir": data_dir / "spool", "queue_log_path": ""}
            ),
        }
    )


def prepare(settings: Settings) -> list[accounts.DemoAccount]:
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
        with transaction(make_sessionmaker(engine)) as session:
            agencies.seed(session, settings.agencies)
            return accounts.ensure(session)
    finally:
        engine.dispose()


def run(args: argparse.Namespace) -> int:
    args.data_dir.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(args.data_dir)
    created = prepare(settings)
    loop = cast(Sequence[Chunk], feed.Loop(feed.load_all()))
    ami = settings.ami
    with FakeAsterisk(
        [loop] * CONNECTIONS,
        username=ami.username,
        secret=ami.secret.get_secret_value(),
        realtime=True,
        close_at_end=False,
    ) as pbx:
        runtime = AmiRuntime(settings, port=pbx.port)
        app = create_app(settings)
        runtime.attach(app)
        runtime.start()
        url = f"http://{args.host}:{args.port}/console/"
        print(f"\nSiaga 112 demo: open {url}\nDemo accounts (user / password / role):")  # noqa: T201
        for account in created:
            member = (
                f"  queue member {account.queue_member_name!r} on {account.queue_member_interface}"
            )
            print(  # noqa: T201
                f"  {account.username:<11} {account.password:<20} {account.role.value:<10}"
                + (member if account.queue_member_name else "")
            )
        print("A simulated PBX replays recorded calls through the AMI listener, in a loop.\n")  # noqa: T201
        try:
            uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
        finally:
            runtime.stop()
    return 0
