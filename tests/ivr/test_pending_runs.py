"""An IVR run the database could not take waits on disk and is recorded once it is back: the
call is served either way, and its record is not lost (ivr.pending)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callcenter.ivr import pending
from callcenter.ivr.flow import CallerFlag, Outcome
from callcenter.ivr.runner import record
from callcenter.ivr.session import RunFacts
from callcenter.settings import Settings
from tests.ivr.harness import ivr_runs


def facts(uniqueid: str, **changes: Any) -> RunFacts:
    began = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)
    run = RunFacts(
        pbx="ttu",
        uniqueid=uniqueid,
        channel=f"PJSIP/trunk-{uniqueid}",
        caller_raw="081234567890",
        started_at=began,
        calling_pres=32,
        caller_e164="+6281234567890",
        flag=CallerFlag.prank,
        priority=5,
        warning_played=True,
        lookup_status="found",
        lookup_ms=12,
        outcome=Outcome.completed,
        ended_at=began + timedelta(seconds=4),
    )
    return dataclasses.replace(run, **changes)


@pytest.fixture
def database_down(settings: Settings, closed_port: int) -> Settings:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/nowhere"
    return settings.model_copy(update={"database_url": url})


def test_a_run_kept_while_the_database_is_down_is_recorded_with_the_next_one(
    settings: Settings, database_down: Settings, database_url: str
) -> None:
    folder = settings.data_dir / pending.FOLDER
    during = facts("1796000000.1")

    record(during, database_down)

    kept = pending.waiting(folder)
    assert len(kept) == 1
    assert pending.read(kept[0]) == during
    assert ivr_runs(database_url) == {}

    record(facts("1796000000.2", flag=None, outcome=Outcome.caller_hung_up), settings)

    runs = ivr_runs(database_url)
    assert set(runs) == {"1796000000.1", "1796000000.2"}
    assert (runs["1796000000.1"].flag, runs["1796000000.1"].priority) == ("prank", 5)
    assert runs["1796000000.1"].calling_pres == 32
    assert pending.waiting(folder) == []


def test_a_kept_run_drained_twice_is_stored_once_and_a_bad_file_is_set_aside(
    settings: Settings, database_url: str
) -> None:
    from callcenter.db import make_engine

    folder = settings.data_dir / pending.FOLDER
    first = pending.keep(folder, facts("1796000000.3"))
    copy = folder / ("0-" + first.name)
    copy.write_bytes(first.read_bytes())  # the same run kept twice
    (folder / "00-broken.json").write_text("{not json")

    engine = make_engine(database_url)
    try:
        assert pending.drain(folder, engine) == 2
    finally:
        engine.dispose()

    assert set(ivr_runs(database_url)) == {"1796000000.3"}
    assert pending.waiting(folder) == []
    assert (folder / "00-broken.corrupt").exists()


def test_a_run_that_cannot_be_kept_either_is_said_in_the_log(
    database_down: Settings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    blocked = database_down.model_copy(update={"data_dir": tmp_path / "file"})

    record(facts("1796000000.4"), blocked)

    assert "could not keep it on disk" in caplog.text
