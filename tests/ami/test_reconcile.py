"""`callcenter reconcile`: Asterisk's queue_log and CDR complete what the listener missed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.ami.batch import Batch
from callcenter.ami.store import CallStore
from callcenter.commands import reconcile as reconcile_command
from callcenter.commands.reconcile import Report, reconcile
from tests.ami.helpers import (
    OUTCOMES,
    PBX,
    expected_calls,
    exported,
    recording_plan,
    replay,
    wall_clock,
)
from tests.conftest import TRACES

CONCURRENT = TRACES / "13-combined-concurrent"
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def run_reconcile(database_url: str, folder: Path, *, cel: bool = False) -> Report:
    return reconcile(
        settings_pbx=PBX,
        database_url=database_url,
        region="ID",
        queue_log=folder / "queue_log",
        cdr=folder / "cdr.csv",
        cel=folder / "cel.jsonl" if cel else None,
        since=SINCE,
        context="from-pstn",
        extensions=["112"],
        cdr_timezone="UTC",
    )


def test_calls_never_seen_live_are_created_from_the_logs(database_url: str) -> None:
    counts = run_reconcile(database_url, CONCURRENT)

    rows = exported(database_url)
    calls = expected_calls(CONCURRENT)
    assert (counts.created, counts.completed, counts.updated) == (len(calls), 0, 0)
    assert sorted(rows) == sorted(c["uniqueid"] for c in calls)
    for call in calls:
        row = rows[call["uniqueid"]]
        queue = call.get("queue") or {}
        assert row["gap"] is True  # nobody saw it live
        assert row["outcome"] == OUTCOMES[call["outcome"]]
        assert row["operator"] == call.get("operator")
        assert row["wait_seconds"] == queue.get("wait_seconds")
        assert row["talk_seconds"] == queue.get("talk_seconds")
        assert row["caller_id_raw"] == call["caller_id_num"]
        assert row["linkedid"] == call["linkedid"]
        assert row["ended_at"] is not None


def test_many_calls_are_written_in_several_transactions_and_none_is_missed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long outage leaves tens of thousands of calls to create: written a bounded number at
    a time (one statement for them all passed PostgreSQL's 65,535 parameters), every one."""
    monkeypatch.setattr(reconcile_command, "CALLS_PER_WRITE", 2)
    sizes: list[int] = []
    write = CallStore.write

    def counted(store: CallStore, batch: Batch) -> None:
        sizes.append(len(batch.calls))
        write(store, batch)

    monkeypatch.setattr(CallStore, "write", counted)
    counts = run_reconcile(database_url, CONCURRENT)

    calls = expected_calls(CONCURRENT)
    assert len(calls) > 2 * reconcile_command.CALLS_PER_WRITE
    assert max(sizes) == 2
    assert sum(sizes) == len(calls)
    assert counts.created == len(calls)
    assert sorted(exported(database_url)) == sorted(c["uniqueid"] for c in calls)


def test_a_gap_call_is_completed_and_seen_calls_are_left_alone(
    database_url: str, tmp_path: Path
) -> None:
    recorded = recording_plan(CONCURRENT)
    replay(database_url, recorded, tmp_path / "spool")
    seen = exported(database_url)

    counts = run_reconcile(database_url, CONCURRENT)

    assert (counts.created, counts.completed, counts.updated) == (0, 0, 0)
    assert counts.summary() == "0 calls created, 0 calls completed, 0 calls updated"
    assert exported(database_url) == seen


def test_reconcile_fills_a_call_the_listener_lost_in_a_gap(
    database_url: str, tmp_path: Path
) -> None:
    from callcenter.ami.fake_server import Recording

    frames = Recording.load(CONCURRENT, stamp=True).frames
    # The listener only heard the first 10 s, then nothing (the stream ends: calls stay open).
    replay(database_url, [[c for c in frames if c.at is not None and c.at < 10]], tmp_path / "s")
    assert any(not row["ended_at"] for row in exported(database_url).values())

    counts = run_reconcile(database_url, CONCURRENT)

    rows = exported(database_url)
    assert counts.created == 0
    for call in expected_calls(CONCURRENT):
        row = rows[call["uniqueid"]]
        assert row["outcome"] == OUTCOMES[call["outcome"]]
        assert row["ended_at"] is not None
        assert row["talk_seconds"] == (call.get("queue") or {}).get("talk_seconds")


def test_with_cel_created_calls_have_cause_interface_and_exact_times(database_url: str) -> None:
    """CEL holds what queue_log and CDR do not: the hangup cause, the operator's channel and
    times to the microsecond."""
    counts = run_reconcile(database_url, CONCURRENT, cel=True)

    rows = exported(database_url)
    calls = expected_calls(CONCURRENT)
    assert counts.created == len(calls)
    clock = wall_clock(CONCURRENT)
    for call in calls:
        row = rows[call["uniqueid"]]
        assert row["hangup_cause"] == call["hangup_cause"], call["label"]
        assert row["operator_interface"] == call.get("operator_interface"), call["label"]
        started = datetime.fromisoformat(row["started_at"])
        assert started.microsecond != 0  # not cut to the second
        assert abs(started.timestamp() - clock[call["t_newchannel"]]) < 0.05, call["label"]
        connect = (call.get("queue") or {}).get("connect")
        if connect:
            answered = datetime.fromisoformat(row["answered_at"]).timestamp()
            assert abs(answered - clock[connect["t_rel"]]) < 0.05, call["label"]


def test_the_report_says_what_changed(database_url: str, tmp_path: Path) -> None:
    """A call the listener left open is completed; calls it only fills in are "updated" with
    the fields named, never counted as completed."""
    from callcenter.ami.fake_server import Recording

    frames = Recording.load(CONCURRENT, stamp=True).frames
    replay(database_url, [[c for c in frames if c.at is not None and c.at < 10]], tmp_path / "s")
    before = exported(database_url)
    still_open = sum(1 for row in before.values() if row["ended_at"] is None)

    counts = run_reconcile(database_url, CONCURRENT, cel=True)

    after = exported(database_url)
    assert counts.completed == still_open
    assert counts.created == len(after) - len(before)
    changed_fields = {
        name
        for uid, row in before.items()
        for name in ("hangup_cause", "ended_at", "outcome")
        if row[name] != after[uid][name]
    }
    assert changed_fields <= set(counts.fields)
    assert counts.summary().startswith(f"{counts.created} call")
