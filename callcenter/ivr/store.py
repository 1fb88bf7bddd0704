"""Writes one IVR session's facts, once, after the caller has been handed back to the dialplan."""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.ivr.models import IvrRun
from callcenter.ivr.session import RunFacts

log = logging.getLogger(__name__)


def record_run(engine: Engine, facts: RunFacts) -> None:
    """Insert the run, or replace it if the same channel ran the IVR again (dialplan loop)."""
    values = dataclasses.asdict(facts)
    values["caller_id_raw"] = values.pop("caller_raw")[:128]
    values["flag"] = facts.flag.value if facts.flag else None
    values["outcome"] = facts.outcome.value
    with Session(engine) as session, session.begin():
        run = session.scalars(
            select(IvrRun).where(IvrRun.pbx == facts.pbx, IvrRun.uniqueid == facts.uniqueid)
        ).one_or_none()
        if run is None:
            session.add(IvrRun(**values))
        else:
            for key, value in values.items():
                setattr(run, key, value)
