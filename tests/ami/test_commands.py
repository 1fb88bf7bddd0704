"""The commands end to end: `callcenter replay` a trace, then `callcenter export calls`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.calls.export import EXPORT_FIELDS
from callcenter.cli import main
from callcenter.db import make_engine, make_sessionmaker
from callcenter.settings import get_settings
from tests.ami.helpers import OUTCOMES, expected_calls
from tests.builders import make_call
from tests.conftest import TRACES

ANSWERED = TRACES / "20-pjsip-answered"


@pytest.fixture
def configured(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("CALLCENTER_DATABASE_URL", database_url)
    monkeypatch.setenv("CALLCENTER_AMI__SECRET", "ttu112secret")
    monkeypatch.setenv("CALLCENTER_AMI__SPOOL_DIR", str(tmp_path / "spool"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("configured")
def test_replay_then_export_jsonl_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(ANSWERED)]) == 0
    assert "1 calls" in capsys.readouterr().out

    assert main(["export", "calls", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["export", "calls", "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    call = expected_calls(ANSWERED)[0]
    assert [list(r) for r in rows] == [list(EXPORT_FIELDS)]
    assert rows[0]["uniqueid"] == call["uniqueid"]
    assert rows[0]["outcome"] == OUTCOMES[call["outcome"]]
    assert rows[0]["operator"] == call["operator"]
    assert rows[0]["started_at"].startswith("2026-11-28T01:")
    assert table[0]["uniqueid"] == call["uniqueid"]
    assert table[0]["talk_seconds"] == str(call["queue"]["talk_seconds"])
    assert table[0]["classification"] == ""
    # Which call and which PBX a row is: the row's id and pbx, in both formats.
    assert table[0]["id"] == str(rows[0]["id"])
    assert rows[0]["pbx"] == table[0]["pbx"] == get_settings().ami.pbx_name
    assert table[0]["answer_seconds"] == str(rows[0]["answer_seconds"])


@pytest.mark.usefixtures("configured")
def test_replay_of_a_folder_of_traces_twice_is_idempotent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    traces = tmp_path / "traces"
    traces.mkdir()
    for name in ("02-abandoned", "21-pjsip-abandoned"):
        (traces / name).symlink_to(TRACES / name)
    assert main(["replay", str(traces)]) == 0
    assert main(["replay", str(traces)]) == 0
    capsys.readouterr()
    assert main(["export", "calls"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["outcome"] for r in rows) == ["abandoned_in_queue", "abandoned_in_queue"]


@pytest.mark.usefixtures("configured")
def test_reconcile_needs_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--since", "2026-11-01"]) == 2
    assert "queue_log" in capsys.readouterr().out


def test_export_into_a_closed_pipe_stops_quietly(database_url: str) -> None:
    """`callcenter export calls | head -1`: the reader leaves early; no traceback."""
    engine = make_engine(database_url)
    with make_sessionmaker(engine).begin() as session:
        for _ in range(300):  # about 190 KB of JSON lines, well over a pipe's 64 KiB
            make_call(session)
    engine.dispose()
    script = str(Path(sys.executable).parent / "callcenter")
    env = os.environ | {"CALLCENTER_DATABASE_URL": database_url}
    with subprocess.Popen(
        [script, "export", "calls", "--format", "jsonl"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as export:
        assert export.stdout is not None
        assert export.stderr is not None
        first = json.loads(export.stdout.readline())
        export.stdout.close()
        errors = export.stderr.read().decode()
        code = export.wait(60)
    assert first["outcome"] == "answered"
    assert "Traceback" not in errors
    assert code == 1


@pytest.mark.usefixtures("configured")
def test_replay_now_puts_an_abandoned_call_on_the_worklist_and_ends_quietly(
    caplog: pytest.LogCaptureFixture, database_url: str
) -> None:
    """The README's steps: a recorded abandon replayed `--now` is on today's call-back list
    (with its recorded dates it was older than the window), and a replay that simply reached
    the end of its stream logs no WARNING."""
    from datetime import UTC, datetime

    from callcenter.callbacks.service import worklist

    caplog.set_level("INFO")
    assert main(["replay", "--now", str(TRACES / "21-pjsip-abandoned")]) == 0
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], caplog.text

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        items = worklist(session, now=datetime.now(UTC), window_hours=72, max_attempts=3)
    engine.dispose()
    assert [(item.caller, item.why) for item in items] == [("+6281339112233", "abandoned_in_queue")]
    assert abs((datetime.now(UTC) - items[0].started_at).total_seconds()) < 300
