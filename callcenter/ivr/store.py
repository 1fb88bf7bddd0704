"""Writes one IVR session's facts, once, after the caller has been handed back to the dialplan."""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.ivr.models import IvrRun
from callcenter.ivr.session import RunFacts

log = logging.getLogger(__name__)


def record_run(engine: Engine, facts: RunFacts) -> bool:
    """Insert the run; False (and nothing changed) if the call already has one.

    Insert-only: a session that names an existing call's uniqueid, by a dialplan that runs the
    IVR twice or by a peer that made the uniqueid up, never rewrites the first run's flag,
    priority or look-up.
    """
    values = dataclasses.asdict(facts)
    values["caller_id_raw"] = values.pop("caller_raw")[:128]
    values["flag"] = facts.flag.value if facts.flag else None
    values["outcome"] = facts.outcome.value
    try:
        with Session(engine) as session, session.begin():
            session.add(IvrRun(**values))
    except IntegrityError:
        log.warning(
            "an IVR run of %s:%s is already recorded: kept the first, ignored this one",
            facts.pbx,
            facts.uniqueid,
        )
        return False
    return True
