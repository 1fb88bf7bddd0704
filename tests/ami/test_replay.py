"""Every recorded trace, through the real listener over a real socket, against expected.json."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from callcenter.phone import normalise
from tests.ami.helpers import (
    TRACE_FOLDERS,
    expected_calls,
    exported,
    recording_plan,
    replay,
    wall_clock,
)

OUTCOMES = {
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


def assert_close(got: str | None, want: datetime | None, field: str) -> None:
    if want is None:
        assert got is None, field
        return
    assert got is not None, field
    delta = abs((datetime.fromisoformat(got) - want).total_seconds())
    # Frames of one TCP read share a t_rel in the capture, their t_wall differ a little.
    assert delta < 0.1, (field, got, want)


def check_call(row: dict[str, Any], call: dict[str, Any], clock: dict[float, float]) -> None:
    queue: dict[str, Any] = call.get("queue") or {}
    assert row["linkedid"] == call["linkedid"]
    assert row["caller_id_raw"] == call["caller_id_num"]
    assert expected_name(call["caller_id_name"], row["caller_id_name"]) == call["caller_id_name"]
    assert row["caller_e164"] == normalise(call["caller_id_num"]).e164
    assert row["outcome"] == OUTCOMES[call["outcome"]]
    assert row["queue"] == queue.get("queue")
    assert row["operator"] == call.get("operator")
    assert row["operator_interface"] == call.get("operator_interface")
    assert row["wait_seconds"] == queue.get("wait_seconds")
    assert row["talk_seconds"] == queue.get("talk_seconds")
    assert row["ended_by"] == expected_ended_by(call["who_hung_up"])
    assert row["hangup_cause"] == call["hangup_cause"]
    assert row["classification"] is None
    assert row["gap"] is False
    assert_close(row["started_at"], at(clock, call["t_newchannel"]), "started_at")
    assert_close(row["queued_at"], at(clock, queue.get("t_join")), "queued_at")
    connect = queue.get("connect") or {}
    assert_close(row["answered_at"], at(clock, connect.get("t_rel")), "answered_at")
    assert_close(row["ended_at"], at(clock, call["t_hangup"]), "ended_at")


@pytest.mark.parametrize("folder", TRACE_FOLDERS, ids=lambda p: p.name)
def test_trace_replayed_matches_expected(database_url: str, folder: Path, tmp_path: Path) -> None:
    listener, _ = replay(database_url, recording_plan(folder), tmp_path / "spool")

    rows = exported(database_url)
    calls = expected_calls(folder)
    assert sorted(rows) == sorted(c["uniqueid"] for c in calls)
    clock = wall_clock(folder)
    for call in calls:
        check_call(rows[call["uniqueid"]], call, clock)
    assert listener.counters.spooled_batches == 0
    assert listener.counters.stored_events > 0
