"""`callcenter reconcile`: Asterisk's queue_log and CDR complete what the listener missed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from callcenter.commands.reconcile import reconcile
from tests.ami.helpers import (
    OUTCOMES,
    PBX,
    expected_calls,
    exported,
    recording_plan,
    replay,
)
from tests.conftest import TRACES

CONCURRENT = TRACES / "13-combined-concurrent"
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


def run_reconcile(database_url: str, folder: Path) -> dict[str, int]:
    return reconcile(
        settings_pbx=PBX,
        database_url=database_url,
        region="ID",
        queue_log=folder / "queue_log",
        cdr=folder / "cdr.csv",
        since=SINCE,
        context="from-pstn",
        extensions=["112"],
        cdr_timezone="UTC",
    )


def test_calls_never_seen_live_are_created_from_the_logs(database_url: str) -> None:
    counts = run_reconcile(database_url, CONCURRENT)

    rows = exported(database_url)
    calls = expected_calls(CONCURRENT)
    assert counts == {"completed": 0, "created": len(calls)}
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


def test_a_gap_call_is_completed_and_seen_calls_are_left_alone(
    database_url: str, tmp_path: Path
) -> None:
    recorded = recording_plan(CONCURRENT)
    replay(database_url, recorded, tmp_path / "spool")
    seen = exported(database_url)

    counts = run_reconcile(database_url, CONCURRENT)

    assert counts == {"completed": 0, "created": 0}
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
    assert counts["created"] == 0
    for call in expected_calls(CONCURRENT):
        row = rows[call["uniqueid"]]
        assert row["outcome"] == OUTCOMES[call["outcome"]]
        assert row["ended_at"] is not None
        assert row["talk_seconds"] == (call.get("queue") or {}).get("talk_seconds")
