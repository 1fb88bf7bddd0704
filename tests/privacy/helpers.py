"""A caller's data in every table that keeps a number: calls, raw events, IVR runs, callers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from callcenter.ivr.models import IvrRun
from callcenter.models import CallEvent, Classification
from callcenter.phone import normalise
from tests.builders import make_call, make_caller

OLD_NUMBER = "081234567890"  # last called 60 days ago
NEW_NUMBER = "081299990000"  # calls today


def seed_caller(
    session: Session, number: str, *, when: datetime, pranks: int, pbx: str = "test-pbx"
) -> list[int]:
    """``pranks`` prank calls from ``number`` at ``when`` (a minute apart), each with a raw
    event and an IVR run; the caller row last seen then. Returns the call ids."""
    caller = make_caller(session, number=number, call_count=pranks, prank_count=pranks)
    caller.first_seen_at = caller.last_seen_at = when
    ids = []
    for n in range(pranks):
        started = when + timedelta(minutes=n)
        call = make_call(
            session,
            caller=number,
            caller_name="Budi Santoso",
            started_at=started,
            classification=Classification.prank,
            caller_key_id=caller.id,
            pbx=pbx,
        )
        session.add(
            CallEvent(
                pbx=pbx,
                dedup_key=f"{started.timestamp()}:{call.uniqueid}",
                call_id=call.id,
                uniqueid=call.uniqueid,
                linkedid=call.linkedid,
                name="Newchannel",
                event_time=started,
                received_at=started,
                raw=f"Event: Newchannel\r\nCallerIDNum: {number}\r\nCallerIDName: Budi Santoso",
            )
        )
        session.add(
            IvrRun(
                pbx=pbx,
                uniqueid=call.uniqueid,
                channel=call.channel,
                caller_id_raw=number,
                caller_e164=normalise(number).e164,
                outcome="completed",
                started_at=started,
                prompts_failed=0,
                warning_played=False,
            )
        )
        ids.append(call.id)
    session.flush()
    return ids
