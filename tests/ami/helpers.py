"""Running the real listener against the fake Asterisk, and reading back what it stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, event, exists, func, select

from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from callcenter.ami.listener import Listener
from callcenter.ami.spool import Spool
from callcenter.ami.store import CallStore
from callcenter.calls.export import export_rows
from callcenter.db import make_engine, make_sessionmaker
from callcenter.models import Call, CallEvent
from callcenter.phone import normalise
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


def impatient_engine(database_url: str) -> Engine:
    """An engine that gives up on a locked database in 0.1 s instead of waiting 10 s."""
    if database_url.startswith("sqlite"):
        engine = make_engine(database_url)

        def short_busy_timeout(connection: Any, _record: Any) -> None:
            connection.execute("PRAGMA busy_timeout=100")

        event.listen(engine, "connect", short_busy_timeout)
        return engine
    return make_engine(database_url, connect_args={"options": "-c lock_timeout=100"})


def make_listener(
    database_url: str, port: int, spool_dir: Path, **kwargs: Any
) -> tuple[Listener, CallStore]:
    engine = impatient_engine(database_url)
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
    clock: dict[float, float] = {}
    for line in (folder / "ami.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "t_wall" in row:
            clock.setdefault(float(row["t_rel"]), float(row["t_wall"]))
    return clock


OUTCOMES: dict[str, str] = {
    "answered": "answered",
    "answered_then_transferred": "answered",
    "abandoned": "abandoned_in_queue",
    "hangup_in_ivr": "abandoned_in_ivr",
    "queue_timeout": "unanswered",
}


def expected_ended_by(who_hung_up: str) -> str:
    if who_hung_up in ("caller", "operator"):
        return who_hung_up
    # Queue timeouts end in the dialplan; a transferred call's last leg is ended by the PBX.
    assert who_hung_up.startswith(("system", "transferred")), who_hung_up
    return "system"


def expected_name(name: str, got: str) -> str:
    if "\ufffd" in name:
        # The trace shows invalid UTF-8 as U+FFFD; we keep the bytes (read as Latin-1).
        return got.encode("latin-1").decode("utf-8", "replace")
    return got


def at(clock: dict[float, float], t_rel: float | None) -> datetime | None:
    return None if t_rel is None else datetime.fromtimestamp(clock[t_rel], UTC)


def assert_close(
    got: str | None, want: datetime | None, field: str, tolerance: float = 0.1
) -> None:
    if want is None:
        assert got is None, field
        return
    assert got is not None, field
    delta = abs((datetime.fromisoformat(got) - want).total_seconds())
    # Frames of one TCP read share a t_rel in the capture, their t_wall differ a little.
    assert delta < tolerance, (field, got, want)


def check_call(
    row: dict[str, Any], call: dict[str, Any], clock: dict[float, float], tolerance: float = 0.1
) -> None:
    queue: dict[str, Any] = call.get("queue") or {}
    assert row["linkedid"] == call["linkedid"]
    assert row["caller_id_raw"] == call["caller_id_num"]
    # AMI's "<unknown>" (no name) is stored as no name, as the CDR has it.
    want_name = None if call["caller_id_name"] in ("<unknown>", "") else call["caller_id_name"]
    got_name = row["caller_id_name"]
    assert (expected_name(want_name, got_name) if want_name and got_name else got_name) == want_name
    assert row["caller_e164"] == normalise(call["caller_id_num"]).e164
    assert row["outcome"] == OUTCOMES[call["outcome"]], row
    assert row["queue"] == queue.get("queue")
    assert row["operator"] == call.get("operator")
    assert row["operator_interface"] == call.get("operator_interface")
    assert row["wait_seconds"] == queue.get("wait_seconds")
    assert row["talk_seconds"] == queue.get("talk_seconds")
    assert row["ended_by"] == expected_ended_by(call["who_hung_up"])
    assert row["hangup_cause"] == call["hangup_cause"]
    assert row["classification"] is None
    assert row["gap"] is False
    assert_close(row["started_at"], at(clock, call["t_newchannel"]), "started_at", tolerance)
    assert_close(row["queued_at"], at(clock, queue.get("t_join")), "queued_at", tolerance)
    connect = queue.get("connect") or {}
    assert_close(row["answered_at"], at(clock, connect.get("t_rel")), "answered_at", tolerance)
    assert_close(row["ended_at"], at(clock, call["t_hangup"]), "ended_at", tolerance)
    if connect.get("t_rel") is None:
        assert row["answer_seconds"] is None
    else:
        # From reaching the PBX (Newchannel) to the operator's answer, IVR included.
        pbx_to_answer = clock[connect["t_rel"]] - clock[call["t_newchannel"]]
        assert abs(row["answer_seconds"] - pbx_to_answer) < 1 + tolerance, row


def assert_matches_expected(database_url: str, folder: Path, tolerance: float = 0.1) -> None:
    """One row per expected call, each field as expected.json says."""
    rows = exported(database_url)
    calls = expected_calls(folder)
    assert sorted(rows) == sorted(c["uniqueid"] for c in calls)
    clock = wall_clock(folder)
    for call in calls:
        check_call(rows[call["uniqueid"]], call, clock, tolerance)
    linked, orphans = linked_events(database_url)
    assert orphans == 0
    assert linked > 0 or not calls


def linked_events(database_url: str) -> tuple[int, int]:
    """(events linked to a call, of them those whose call_id names no stored call): call_events
    has no foreign key (migration 0006), the listener's writes must keep the link."""
    linked = CallEvent.call_id.is_not(None)
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        count = session.scalar(select(func.count()).select_from(CallEvent).where(linked))
        orphans = session.scalar(
            select(func.count())
            .select_from(CallEvent)
            .where(linked, ~exists().where(Call.id == CallEvent.call_id))
        )
    engine.dispose()
    return count or 0, orphans or 0


def wait_for(condition: Callable[[], Any], what: str) -> None:
    """Poll a condition (a wait, not a timed assertion: the deadline only stops a hang)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)
