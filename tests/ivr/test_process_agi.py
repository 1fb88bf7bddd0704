"""`callcenter agi` over real pipes, fed the recorded Asterisk lines (process AGI)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ivr.fake_asterisk import Scenario, expected_commands, session
from tests.ivr.harness import ivr_environ, ivr_runs, run_process_agi, seed_pranks

ANSWERED = session("01-answered", "agi-process")  # 081234567890, "Budi Santoso"
HUNG_UP = session("05-hangup-in-ivr", "agi-process")
WITHHELD = session("10-callerid-edge-cases", "agi-process", 0)  # anonymous, pres 35
LATIN1_NAME = session("10-callerid-edge-cases", "agi-process", 4)  # invalid UTF-8 name
BUDI = "+6281234567890"


def test_normal_caller_is_queued_at_normal_priority(database_url: str, environ) -> None:
    run = run_process_agi(Scenario(ANSWERED), environ)

    assert run.sent == expected_commands(
        ANSWERED.uniqueid, flag="none", priority=10, lookup="found"
    )
    assert run.returncode == 0, run.stderr
    row = ivr_runs(database_url)[ANSWERED.uniqueid]
    assert (row.pbx, row.caller_id_raw, row.caller_e164) == ("ttu-pbx-1", "081234567890", BUDI)
    assert (row.flag, row.priority, row.warning_played, row.outcome) == (
        "none",
        10,
        False,
        "completed",
    )
    assert row.lookup_status == "found"
    assert row.lookup_ms is not None
    assert row.ended_at is not None
    assert row.ended_at >= row.started_at


def test_prank_caller_is_warned_and_queued_lower(database_url: str, environ) -> None:
    seed_pranks(database_url, BUDI, count=3)

    run = run_process_agi(Scenario(ANSWERED), environ)

    assert run.sent == expected_commands(
        ANSWERED.uniqueid, flag="prank", priority=1, lookup="found", warning=True
    )
    row = ivr_runs(database_url)[ANSWERED.uniqueid]
    assert (row.flag, row.priority, row.warning_played) == ("prank", 1, True)


def test_pranks_outside_the_window_do_not_count(database_url: str, environ) -> None:
    seed_pranks(database_url, BUDI, count=2)
    seed_pranks(database_url, BUDI, count=5, days_ago=31)

    run = run_process_agi(Scenario(ANSWERED), environ)

    assert run.sent == expected_commands(
        ANSWERED.uniqueid, flag="none", priority=10, lookup="found"
    )


def test_withheld_number_is_queued_normally(database_url: str, environ) -> None:
    run = run_process_agi(Scenario(WITHHELD), environ)

    # Recorded with CALLERID(num-pres)=prohib: agi_callingpres 35, reported for the listener.
    assert run.sent == expected_commands(
        WITHHELD.uniqueid, flag="withheld", priority=10, lookup="withheld", private_pres=35
    )
    row = ivr_runs(database_url)[WITHHELD.uniqueid]
    assert (row.caller_id_raw, row.caller_e164, row.flag) == ("anonymous", None, "withheld")
    assert row.calling_pres == 35


def test_caller_name_that_is_not_utf8_does_not_stop_the_ivr(database_url: str, environ) -> None:
    run = run_process_agi(Scenario(LATIN1_NAME), environ)

    assert run.sent == expected_commands(
        LATIN1_NAME.uniqueid, flag="none", priority=10, lookup="found"
    )


def test_hangup_during_greeting_ends_the_session_cleanly(database_url: str, environ) -> None:
    """Recorded: STREAM FILE gets -1, SIGHUP arrives, the next command gets 511."""
    run = run_process_agi(Scenario(HUNG_UP, hang_up_during="custom/112-greeting"), environ)

    assert run.sent == [
        "ANSWER",
        f'SET VARIABLE CALLCENTER_CALL_ID "ttu-pbx-1:{HUNG_UP.uniqueid}"',
        'STREAM FILE custom/112-greeting ""',
        "CHANNEL STATUS",
    ]
    assert run.returncode == 0, run.stderr
    row = ivr_runs(database_url)[HUNG_UP.uniqueid]
    assert (row.outcome, row.flag, row.priority) == ("caller_hung_up", None, None)
    assert row.ended_at is not None


def test_hangup_during_prank_warning(database_url: str, environ) -> None:
    seed_pranks(database_url, BUDI, count=4)
    scenario = Scenario(ANSWERED, hang_up_during="custom/112-prank-warning")

    run = run_process_agi(scenario, environ)

    assert run.sent == [
        *expected_commands(ANSWERED.uniqueid, flag="prank", priority=1, lookup="found")[:5],
        'STREAM FILE custom/112-prank-warning ""',
        "CHANNEL STATUS",
    ]
    row = ivr_runs(database_url)[ANSWERED.uniqueid]
    assert (row.outcome, row.flag, row.warning_played) == ("caller_hung_up", "prank", False)


def test_missing_greeting_goes_on_to_the_queue(database_url: str, environ) -> None:
    """Recorded: a missing file gives `200 result=-1 endpos=0`, the channel is still up."""
    scenario = Scenario(ANSWERED, missing_prompts=frozenset({"custom/112-greeting"}))

    run = run_process_agi(scenario, environ)

    expected = expected_commands(ANSWERED.uniqueid, flag="none", priority=10, lookup="found")
    assert run.sent == [*expected[:3], "CHANNEL STATUS", *expected[3:]]
    row = ivr_runs(database_url)[ANSWERED.uniqueid]
    assert (row.outcome, row.prompts_failed, row.priority) == ("completed", 1, 10)
    assert "could not be played" in run.stderr


def test_missing_warning_still_queues_the_flagged_caller(database_url: str, environ) -> None:
    seed_pranks(database_url, BUDI, count=3)
    scenario = Scenario(ANSWERED, missing_prompts=frozenset({"custom/112-prank-warning"}))

    run = run_process_agi(scenario, environ)

    expected = expected_commands(
        ANSWERED.uniqueid, flag="prank", priority=1, lookup="found", warning=True
    )
    assert run.sent == [*expected[:6], "CHANNEL STATUS", *expected[6:]]
    row = ivr_runs(database_url)[ANSWERED.uniqueid]
    assert (row.warning_played, row.prompts_failed, row.outcome) == (False, 1, "completed")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word: a database that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_database_down_queues_at_normal_priority(closed_port: int, tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/nowhere"

    run = run_process_agi(Scenario(ANSWERED), ivr_environ(url, tmp_path))

    assert run.sent == expected_commands(
        ANSWERED.uniqueid, flag="unchecked", priority=10, lookup="miss"
    )
    assert run.returncode == 0
    assert "caller look-up missed" in run.stderr
    assert "could not record the IVR run" in run.stderr
    # Kept on disk, recorded with the next run once the database is back (ivr.pending).
    assert len(list((tmp_path / "data" / "ivr-pending").glob("*.json"))) == 1


def test_lookup_past_its_deadline_queues_at_normal_priority(
    silent_server: int, tmp_path: Path
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/hangs"
    environ = ivr_environ(url, tmp_path, CALLCENTER_IVR__LOOKUP_DEADLINE_MS="300")

    run = run_process_agi(Scenario(ANSWERED), environ)

    assert run.sent == expected_commands(
        ANSWERED.uniqueid, flag="unchecked", priority=10, lookup="miss"
    )
    assert "deadline" in run.stderr
