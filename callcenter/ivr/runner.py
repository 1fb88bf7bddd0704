"""One AGI session end to end, over any pair of byte streams (process AGI pipes or a socket)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import BinaryIO

from callcenter import logs
from callcenter.ivr.agi import AgiChannel, SafeAGI, text_streams
from callcenter.ivr.flow import AgiCall, Outcome, call_from_env
from callcenter.ivr.lookup import ThreadLookup
from callcenter.ivr.session import run_session
from callcenter.settings import Settings

log = logging.getLogger(__name__)


def run_agi(
    reader: BinaryIO,
    writer: BinaryIO,
    settings: Settings,
    *,
    release: Callable[[], None],
) -> Outcome:
    """Run the IVR, `release` the channel (Asterisk goes on to the queue), then record the run.

    Recording comes last so a slow or dead database never holds the caller; it is one write, so
    a hangup leaves either the whole row or (database down) none.
    """
    stdin, stdout = text_streams(reader, writer)
    agi = SafeAGI(stdin, stdout)  # reads the agi_* block
    call = call_from_env(agi.env, default_pbx=settings.ami.pbx_name)
    # Every line logged about this call carries its uniqueid and PBX (callcenter.logs).
    with logs.call_context(uniqueid=call.uniqueid or None, pbx=call.pbx):
        return _run_call(agi, call, settings, release)


def _run_call(
    agi: SafeAGI, call: AgiCall, settings: Settings, release: Callable[[], None]
) -> Outcome:
    lookup = ThreadLookup(call.caller_raw, settings)
    facts = run_session(AgiChannel(agi), call, lookup, settings.ivr)
    release()
    if not call.uniqueid:
        log.warning("AGI session without agi_uniqueid: nothing recorded")
        return facts.outcome
    try:
        # Imported here, not at the top: process AGI start-up does not wait for SQLAlchemy.
        from callcenter.ivr.lookup import lookup_engine
        from callcenter.ivr.store import record_run

        engine = lookup_engine(settings.resolved_database_url)
        try:
            record_run(engine, facts)
        finally:
            engine.dispose()
    except Exception as exc:  # database down: the call itself is unharmed, say so briefly
        first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
        log.error(
            "could not record the IVR run of %s: %s: %s",
            call.call_ref,
            type(exc).__name__,
            first_line,
        )
    return facts.outcome
