"""The IVR's decisions: AGI environment and caller look-up in, steps for the channel out.

Nothing here touches a channel, a database or a clock, so every branch is a plain function call:

>>> from callcenter.settings import IvrSettings
>>> call = call_from_env({"agi_uniqueid": "1795828474.13", "agi_callerid": "081234567890"},
...                      default_pbx="ttu-pbx-1")
>>> [str(step) for step in opening(call, IvrSettings())]
['ANSWER', 'SET CALLCENTER_CALL_ID=ttu-pbx-1:1795828474.13', 'PLAY custom/112-greeting']
>>> d = decide(call, LookupResult.found("+6281234567890", prank_count=3, elapsed_ms=4),
...            IvrSettings())
>>> d.flag, d.priority
(<CallerFlag.prank: 'prank'>, 1)
>>> for step in d.steps: print(step)
SET CALLER_FLAG=prank
SET QUEUE_PRIO=1
PLAY custom/112-prank-warning
VERBOSE Siaga112 IVR ttu-pbx-1:1795828474.13 flag=prank prio=1 lookup=found
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from callcenter.presentation import restricted
from callcenter.settings import IvrSettings

# Channel variables the dialplan and the operators read.
VAR_CALL_ID = "CALLCENTER_CALL_ID"
VAR_FLAG = "CALLER_FLAG"
VAR_PRIORITY = "QUEUE_PRIO"  # app_queue reads it: a higher number is answered first
# The caller's presentation as AGI gave it (agi_callingpres): the AMI listener reads the VarSet
# and marks the call private when it is restricted (callcenter.presentation.restricted).
VAR_PRESENTATION = "CALLER_PRES"


class CallerFlag(enum.StrEnum):
    none = "none"  # looked up, nothing against the caller
    prank = "prank"  # tagged prank often enough recently: warned, queued lower
    # the caller withheld the number (presentation restricted: the number is kept, not shown
    # to all) or sent none usable (unknown, malformed): queued normally
    withheld = "withheld"
    unchecked = "unchecked"  # the look-up missed its deadline or failed: queued normally


class LookupStatus(enum.StrEnum):
    found = "found"
    withheld = "withheld"
    miss = "miss"


class Outcome(enum.StrEnum):
    """How an IVR session ended."""

    completed = "completed"
    caller_hung_up = "caller_hung_up"
    agi_error = "agi_error"  # Asterisk said something we cannot follow; the dialplan queues
    skipped_busy = "skipped_busy"  # every session slot was taken: queued unchecked at once


@dataclass(frozen=True, slots=True)
class LookupResult:
    status: LookupStatus
    caller_e164: str | None = None
    prank_count: int | None = None
    elapsed_ms: int | None = None
    reason: str = ""

    @classmethod
    def found(cls, e164: str, *, prank_count: int, elapsed_ms: int) -> LookupResult:
        return cls(LookupStatus.found, e164, prank_count, elapsed_ms)

    @classmethod
    def withheld(cls) -> LookupResult:
        return cls(LookupStatus.withheld)

    @classmethod
    def miss(cls, reason: str, *, elapsed_ms: int | None = None) -> LookupResult:
        return cls(LookupStatus.miss, elapsed_ms=elapsed_ms, reason=reason)


@dataclass(frozen=True, slots=True)
class AgiCall:
    """What the IVR needs from the agi_* block Asterisk sends first."""

    pbx: str
    uniqueid: str
    channel: str
    caller_raw: str
    calling_pres: int | None = None  # agi_callingpres, e.g. 32: presentation prohibited

    @property
    def private(self) -> bool:
        """The caller asked for privacy: presentation restricted (0x20 in bits 6-7)."""
        return restricted(None if self.calling_pres is None else str(self.calling_pres))

    @property
    def call_ref(self) -> str:
        """The call's key in the backend, (pbx, uniqueid), as one string for the dialplan."""
        return f"{self.pbx}:{self.uniqueid}"


@dataclass(frozen=True, slots=True)
class Answer:
    def __str__(self) -> str:
        return "ANSWER"


@dataclass(frozen=True, slots=True)
class SetVariable:
    name: str
    value: str

    def __str__(self) -> str:
        return f"SET {self.name}={self.value}"


@dataclass(frozen=True, slots=True)
class Play:
    prompt: str
    purpose: str  # a key of [ivr.prompts]: "greeting", "prank_warning", ...

    def __str__(self) -> str:
        return f"PLAY {self.prompt}"


@dataclass(frozen=True, slots=True)
class Verbose:
    message: str

    def __str__(self) -> str:
        return f"VERBOSE {self.message}"


Step = Answer | SetVariable | Play | Verbose


@dataclass(frozen=True, slots=True)
class Decision:
    flag: CallerFlag
    priority: int
    steps: list[Step]


def call_from_env(env: Mapping[str, str], *, default_pbx: str) -> AgiCall:
    """The call facts from the agi_* block; a FastAGI URL may name the PBX (`agi://h/ivr?pbx=X`).

    >>> call_from_env({"agi_request": "agi://10.0.0.5:4573/ivr?pbx=soe", "agi_uniqueid": "1.2",
    ...                "agi_callerid": "unknown"}, default_pbx="ttu-pbx-1").pbx
    'soe'
    """
    query = parse_qs(urlsplit(env.get("agi_request", "")).query)
    pbx = (query.get("pbx") or [""])[0].strip() or default_pbx
    return AgiCall(
        pbx=pbx[:64],
        uniqueid=env.get("agi_uniqueid", "").strip(),
        channel=env.get("agi_channel", "").strip(),
        caller_raw=env.get("agi_callerid", ""),
        calling_pres=_int(env.get("agi_callingpres")),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def opening(call: AgiCall, ivr: IvrSettings) -> list[Step]:
    """What the caller hears while the look-up runs: no menu, nothing to wait for."""
    return [
        Answer(),
        SetVariable(VAR_CALL_ID, call.call_ref),
        Play(ivr.prompts.greeting, "greeting"),
    ]


def decide(call: AgiCall, lookup: LookupResult, ivr: IvrSettings) -> Decision:
    """Flag and priority from the look-up. Every branch ends in the queue; none hangs up."""
    if lookup.status is LookupStatus.withheld:
        flag = CallerFlag.withheld
    elif lookup.status is LookupStatus.miss:
        flag = CallerFlag.unchecked
    elif (lookup.prank_count or 0) >= ivr.prank_threshold:
        flag = CallerFlag.prank  # the number was looked up even when withheld from display
    elif call.private:
        flag = CallerFlag.withheld
    else:
        flag = CallerFlag.none
    priority = ivr.priority_flagged if flag is CallerFlag.prank else ivr.priority_normal
    steps: list[Step] = [
        SetVariable(VAR_FLAG, flag.value),
        SetVariable(VAR_PRIORITY, str(priority)),
    ]
    if call.private:
        # For the AMI listener (a VarSet on the caller's channel): the call is stored private.
        steps.insert(0, SetVariable(VAR_PRESENTATION, str(call.calling_pres)))
    if flag is CallerFlag.prank:
        steps.append(Play(ivr.prompts.prank_warning, "prank_warning"))
    # One line on the Asterisk console, so a PBX administrator sees what the IVR decided.
    steps.append(
        Verbose(
            f"Siaga112 IVR {call.call_ref} flag={flag.value} prio={priority} "
            f"lookup={lookup.status.value}"
        )
    )
    return Decision(flag=flag, priority=priority, steps=steps)
