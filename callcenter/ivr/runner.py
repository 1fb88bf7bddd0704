"""One AGI session end to end, over any pair of byte streams (process AGI pipes or a socket)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from callcenter import logs
from callcenter.ivr.agi import AgiChannel, SafeAGI, text_streams
from callcenter.ivr.flow import AgiCall, Outcome, call_from_env
from callcenter.ivr.lookup import PoolLookup, ThreadLookup
from callcenter.ivr.session import PendingLookup, RunFacts, run_session
from callcenter.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Shared:
    """What a FastAGI server's sessions share: one pooled engine, one bounded look-up pool."""

    engine: Engine
    lookups: Executor


def open_agi(reader: BinaryIO, writer: BinaryIO, *, sighup: bool = True) -> SafeAGI:
    """Read the agi_* block. `sighup=False` for FastAGI (any thread; Asterisk sends HANGUP)."""
    stdin, stdout = text_streams(reader, writer)
    return SafeAGI(stdin, stdout, sighup=sighup)


def run_agi(
    reader: BinaryIO,
    writer: BinaryIO,
    settings: Settings,
    *,
    release: Callable[[], None],
) -> Outcome:
    """A process AGI: read the environment, run the IVR, release, record."""
    return run_ivr(open_agi(reader, writer), settings, release=release)


def run_ivr(
    agi: SafeAGI,
    settings: Settings,
    *,
    release: Callable[[], None],
    shared: Shared | None = None,
) -> Outcome:
    """Run the IVR, `release` the channel (Asterisk goes on to the queue), then record the run.

    Recording comes last so a slow or dead database never holds the caller; it is one write, so
    a hangup leaves either the whole row or (database down) none.
    """
    call = call_from_env(agi.env, default_pbx=settings.ami.pbx_name)
    # Every line logged about this call carries its uniqueid and PBX (callcenter.logs).
    with logs.call_context(uniqueid=call.uniqueid or None, pbx=call.pbx):
        return _run_call(agi, call, settings, release, shared)


def _run_call(
    agi: SafeAGI,
    call: AgiCall,
    settings: Settings,
    release: Callable[[], None],
    shared: Shared | None,
) -> Outcome:
    lookup: PendingLookup
    if shared is None:
        lookup = ThreadLookup(call.caller_raw, settings)
    else:
        lookup = PoolLookup(call.caller_raw, settings, shared.engine, shared.lookups)
    facts = run_session(AgiChannel(agi), call, lookup, settings.ivr)
    release()
    record(facts, settings, shared.engine if shared is not None else None)
    return facts.outcome


def record(facts: RunFacts, settings: Settings, engine: Engine | None = None) -> None:
    """Write the run; while the database is away the run waits on disk (ivr.pending) and is
    written after the next one that is recorded: a database that is down never costs the call,
    nor the record of it."""
    if not facts.uniqueid:
        log.warning("AGI session without agi_uniqueid: nothing recorded")
        return
    # Imported here, not at the top: process AGI start-up does not wait for SQLAlchemy.
    from callcenter.ivr import pending
    from callcenter.ivr.lookup import lookup_engine
    from callcenter.ivr.store import record_run

    folder = settings.data_dir / pending.FOLDER
    try:
        own = engine is None
        used = lookup_engine(settings.resolved_database_url) if engine is None else engine
        try:
            record_run(used, facts)
            pending.drain(folder, used)
        finally:
            if own:
                used.dispose()
    except Exception as exc:  # database down: the call itself is unharmed, say so briefly
        first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
        kept = ""
        if isinstance(exc, pending.UNAVAILABLE):
            try:
                kept = f"; kept in {pending.keep(folder, facts)} until it is back"
            except OSError as disk:
                kept = f"; and could not keep it on disk: {disk}"
        log.error(
            "could not record the IVR run of %s:%s: %s: %s%s",
            facts.pbx,
            facts.uniqueid,
            type(exc).__name__,
            first_line,
            kept,
        )
