"""The IVR's pure decisions, and the quoting that pyst2 gets wrong, against the recording."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Engine, inspect

from callcenter.db.migrate import alembic_config, upgrade
from callcenter.ivr.agi import quote
from callcenter.ivr.flow import (
    AgiCall,
    CallerFlag,
    LookupResult,
    Play,
    SetVariable,
    call_from_env,
    decide,
)
from callcenter.settings import IvrSettings
from tests.ivr.fake_asterisk import session

CALL = AgiCall(
    pbx="ttu-pbx-1", uniqueid="1795828474.13", channel="PJSIP/trunk-1", caller_raw="0812"
)
IVR = IvrSettings(prank_threshold=3, priority_normal=10, priority_flagged=1)


@pytest.mark.parametrize(
    ("lookup", "flag", "priority"),
    [
        (LookupResult.found("+6281234567890", prank_count=0, elapsed_ms=3), CallerFlag.none, 10),
        (LookupResult.found("+6281234567890", prank_count=2, elapsed_ms=3), CallerFlag.none, 10),
        (LookupResult.found("+6281234567890", prank_count=3, elapsed_ms=3), CallerFlag.prank, 1),
        (LookupResult.withheld(), CallerFlag.withheld, 10),
        (LookupResult.miss("deadline"), CallerFlag.unchecked, 10),
    ],
)
def test_flag_and_priority(lookup: LookupResult, flag: CallerFlag, priority: int) -> None:
    decision = decide(CALL, lookup, IVR)

    assert (decision.flag, decision.priority) == (flag, priority)
    assert decision.steps[:2] == [
        SetVariable("CALLER_FLAG", flag.value),
        SetVariable("QUEUE_PRIO", str(priority)),
    ]
    warnings = [step for step in decision.steps if isinstance(step, Play)]
    assert warnings == (
        [Play(IVR.prompts.prank_warning, "prank_warning")] if flag == "prank" else []
    )


def test_call_facts_from_the_recorded_environment() -> None:
    recorded = session("05-hangup-in-ivr", "fastagi")
    env = dict(line.decode().rstrip("\n").split(": ", 1) for line in recorded.env if b": " in line)

    call = call_from_env(env, default_pbx="ttu-pbx-1")

    assert call == AgiCall(
        pbx="ttu-pbx-1",
        uniqueid="1795828520.19",
        channel="Local/112@from-pstn-00000009;2",
        caller_raw="085237001122",
        calling_pres=0,
    )
    assert not call.private


def test_a_caller_who_withheld_the_number_is_flagged_withheld_and_the_number_kept() -> None:
    """Recorded over PJSIP with ``Privacy: id``: the asserted number and agi_callingpres 32."""
    recorded = session("24-pjsip-operator-hangup-withheld", "fastagi")
    env = dict(line.decode().rstrip("\n").split(": ", 1) for line in recorded.env if b": " in line)
    call = call_from_env(env, default_pbx="ttu-pbx-1")
    assert (call.caller_raw, call.calling_pres, call.private) == ("038821234", 32, True)

    normal = decide(call, LookupResult.found("+6238821234", prank_count=0, elapsed_ms=2), IVR)
    assert normal.flag is CallerFlag.withheld
    assert normal.steps[:3] == [
        SetVariable("CALLER_PRES", "32"),
        SetVariable("CALLER_FLAG", "withheld"),
        SetVariable("QUEUE_PRIO", "10"),
    ]
    # A withheld number that pranks often is still warned: privacy hides, it does not excuse.
    prank = decide(call, LookupResult.found("+6238821234", prank_count=3, elapsed_ms=2), IVR)
    assert (prank.flag, prank.priority) == (CallerFlag.prank, 1)


def test_quoting_matches_what_asterisk_unescaped_in_the_recording() -> None:
    """Recorded: `SET VARIABLE IVR_NOTE "needs \\"quotes\\" and spaces"` stored the quotes."""
    recorded = session("01-answered", "agi-process")
    sent = next(tx for tx, _ in recorded.exchanges if tx.startswith("SET VARIABLE IVR_NOTE"))
    stored = recorded.reply_to("GET VARIABLE IVR_NOTE")[0].decode()

    value = 'needs "quotes" and spaces'
    assert sent == "SET VARIABLE IVR_NOTE " + quote(value)
    assert stored == '200 result=1 (needs "quotes" and spaces)\n'


def test_ivr_migration_goes_down_and_up(engine: Engine) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert "ivr_runs" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "ivr_runs" in inspect(engine).get_table_names()
