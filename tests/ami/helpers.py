"""Running the real listener against the fake Asterisk, and reading back what it stored."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from callcenter.ami.listener import Listener
from callcenter.ami.spool import Spool
from callcenter.ami.store import CallStore
from callcenter.calls.export import export_rows
from callcenter.db import make_engine, make_sessionmaker
from callcenter.settings import AmiSettings
from tests.conftest import TRACES

PBX = "test-pbx"
TRACE_FOLDERS = sorted(p.parent for p in TRACES.glob("*/expected.json"))


def ami_settings(port: int, **overrides: Any) -> AmiSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "backend112",
        "secret": SecretStr("ttu112secret"),
        "pbx_name": PBX,
        "ping_interval_seconds": 0.5,
        "ping_timeout_seconds": 2.0,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
    }
    values.update(overrides)
    return AmiSettings(**values)


def make_listener(
    database_url: str, port: int, spool_dir: Path, **kwargs: Any
) -> tuple[Listener, CallStore]:
    engine = make_engine(database_url)
    store = CallStore(make_sessionmaker(engine), pbx=PBX)
    settings = ami_settings(port, **kwargs.pop("settings", {}))
    listener = Listener(settings, store, Spool(spool_dir, 64 * 1024 * 1024), **kwargs)
    return listener, store


def replay(
    database_url: str,
    plan: Sequence[Sequence[Chunk]],
    spool_dir: Path,
    **fake_kwargs: Any,
) -> tuple[Listener, FakeAsterisk]:
    """Serve ``plan`` and run the listener until the last connection's stream has ended."""
    with FakeAsterisk(plan, **fake_kwargs) as fake:
        listener, store = make_listener(
            database_url, fake.port, spool_dir, stop_at_eof=len(plan) == 1
        )
        listener.start()
        assert fake.finished.wait(60), "the fake Asterisk never finished its plan"
        listener.stop_at_eof = True
        assert listener.wait(60), "the listener did not drain"
        store.engine.dispose()
    return listener, fake


def recording_plan(folder: Path) -> list[list[Chunk]]:
    return [coalesce(Recording.load(folder, stamp=True).frames)]


def exported(database_url: str) -> dict[str, dict[str, Any]]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        rows = {row["uniqueid"]: row for row in export_rows(session)}
    engine.dispose()
    return rows


def expected_calls(folder: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = json.loads((folder / "expected.json").read_text())["calls"]
    return calls


def wall_clock(folder: Path) -> dict[float, float]:
    """The capture's wall-clock time (t_wall) of each frame time (t_rel) in expected.json."""
    clock = {}
    for line in (folder / "ami.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "t_wall" in row:
            clock.setdefault(float(row["t_rel"]), float(row["t_wall"]))
    return clock
