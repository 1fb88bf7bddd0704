"""One IVR session: the flow's steps played on a channel, the look-up awaited, the facts kept.

The channel is anything with the `Channel` methods (agi.py speaks AGI through pyst2), the look-up
anything with `result(timeout)` (lookup.py), so this module knows neither pyst2 nor SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from callcenter.ivr import flow
from callcenter.ivr.flow import AgiCall, CallerFlag, LookupResult, Outcome, Step
from callcenter.settings import IvrSettings

log = logging.getLogger(__name__)


class CallerHungUp(Exception):
    """The channel is gone (511, SIGHUP, FastAGI HANGUP line, closed connection)."""


class AgiProtocolError(Exception):
    """Asterisk answered something that is neither a result nor a hangup."""


class Channel(Protocol):
    def answer(self) -> None: ...
    def set_variable(self, name: str, value: str) -> None: ...
    def play(self, prompt: str) -> bool:
        """True if played; False if Asterisk could not play it (missing file) but the caller
        is still there. Raises CallerHungUp when the caller has gone."""
        ...

    def verbose(self, message: str) -> None: ...


class PendingLookup(Protocol):
    def result(self, timeout: float) -> LookupResult: ...


@dataclass(slots=True)
class RunFacts:
    """What the IVR did on one call, written once at the end (ivr_runs)."""

    pbx: str
    uniqueid: str
    channel: str
    caller_raw: str
    started_at: datetime
    calling_pres: int | None = None
    caller_e164: str | None = None
    flag: CallerFlag | None = None
    priority: int | None = None
    warning_played: bool = False
    lookup_status: str | None = None
    lookup_ms: int | None = None
    prompts_failed: int = 0
    outcome: Outcome = Outcome.completed
    ended_at: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def run_session(
    channel: Channel,
    call: AgiCall,
    lookup: PendingLookup,
    ivr: IvrSettings,
    clock: Callable[[], datetime] = _now,
) -> RunFacts:
    """Greet while the look-up runs, then set flag and priority. Never raises for a hangup."""
    facts = RunFacts(
        pbx=call.pbx,
        uniqueid=call.uniqueid,
        channel=call.channel,
        caller_raw=call.caller_raw,
        started_at=clock(),
        calling_pres=call.calling_pres,
    )
    try:
        _play_steps(channel, flow.opening(call, ivr), facts)
        # The greeting has played: the look-up had all that time; it gets the deadline more.
        result = lookup.result(timeout=ivr.lookup_deadline_ms / 1000)
        if result.status is flow.LookupStatus.miss:
            log.warning(
                "caller look-up missed for %s (%s): queued at normal priority",
                call.call_ref,
                result.reason,
            )
        facts.caller_e164 = result.caller_e164
        facts.lookup_status = result.status.value
        facts.lookup_ms = result.elapsed_ms
        decision = flow.decide(call, result, ivr)
        facts.flag = decision.flag
        facts.priority = decision.priority
        _play_steps(channel, decision.steps, facts)
    except CallerHungUp as exc:
        log.info("caller hung up during the IVR on %s (%s)", call.call_ref, exc)
        facts.outcome = Outcome.caller_hung_up
    except AgiProtocolError:
        log.exception("AGI session on %s ended early; the dialplan queues the call", call.call_ref)
        facts.outcome = Outcome.agi_error
    facts.ended_at = clock()
    return facts


def _play_steps(channel: Channel, steps: list[Step], facts: RunFacts) -> None:
    for step in steps:
        match step:
            case flow.Answer():
                channel.answer()
            case flow.SetVariable(name=name, value=value):
                channel.set_variable(name, value)
            case flow.Play(prompt=prompt, purpose=purpose):
                played = channel.play(prompt)
                if not played:
                    # The caller goes on to the queue without it; a missing file is for the admin.
                    log.warning("prompt %r (%s) could not be played", prompt, purpose)
                    facts.prompts_failed += 1
                elif purpose == "prank_warning":
                    facts.warning_played = True
            case flow.Verbose(message=message):
                channel.verbose(message)
