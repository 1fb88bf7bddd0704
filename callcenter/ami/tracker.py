"""The call state machine: AMI frames in, call changes out. Pure: no I/O, no clock.

A 112 call is the channel that runs the inbound context and extension (``from-pstn,112`` by
default): the trunk channel of a PJSIP call, the ``;2`` half of a Local channel. It is keyed by
that channel's Uniqueid and grouped by its Linkedid. The call keeps *facts* (when it joined the
queue, who answered, Asterisk's HoldTime/TalkTime, the hangup) and derives its outcome from them,
so a duplicated or late event (``AgentComplete`` after ``Hangup``, as after a Redirect) changes
nothing or completes the call, whatever the order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from callcenter.ami.frames import Frame
from callcenter.presentation import restricted

# Queue() statuses that mean "the queue gave up", as opposed to a caller who hung up.
UNANSWERED_QUEUE_STATUSES = frozenset(
    {"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"}
)
# Hangup causes that mean the network failed the call rather than someone ending it.
FAILURE_CAUSES = frozenset({1, 3, 21, 27, 34, 38, 41, 42, 44, 47, 50, 58, 88, 102, 111, 127})
# Channel variables the tracker reads (VarSet): the queue's verdict, and the caller's
# presentation as the dialplan (CALLERID(pres)) and the IVR (agi_callingpres) put it.
QUEUE_STATUS_VARIABLE = "QUEUESTATUS"
PRESENTATION_VARIABLE = "CALLER_PRES"
_VARIABLES = frozenset({QUEUE_STATUS_VARIABLE, PRESENTATION_VARIABLE})
OVERFLOW_EVENT = "Emergency112Overflow"
# Dial legs: a Local ';1' half executes the inbound extension as "AppDial2", it is not a caller.
_DIAL_APPS = ("AppDial", "AppDial2")
_RING_STATE = "4"
# Finished calls kept in memory for late events; channels seen but not (yet) calls.
MAX_FINISHED = 5000
MAX_CANDIDATES = 5000

_TIME_FIELDS = frozenset(
    {
        "started_at",
        "queued_at",
        "left_queue_at",
        "answered_at",
        "ended_at",
        "gap_started_at",
        "last_event_at",
        "transferred_at",
    }
)
# Since Asterisk 12 a transfer names its channels only through prefixed snapshots (no plain
# Uniqueid or Linkedid): the caller is usually the transferee; the others say whose call it was.
_TRANSFER_PARTIES = {
    "BlindTransfer": ("Transferee", "Transferer"),
    "AttendedTransfer": ("Transferee", "OrigTransferer", "SecondTransferer", "TransferTarget"),
}


@dataclass(slots=True)
class CallState:
    uniqueid: str
    linkedid: str
    channel: str
    started_at: datetime
    last_event_at: datetime
    caller_id_raw: str = "<unknown>"
    caller_id_name: str = "<unknown>"
    ivr: bool = False
    queue: str | None = None
    queue_position: int | None = None
    queued_at: datetime | None = None
    # The dialplan queues a caller again after a queue timeout (asterisk/extensions.conf).
    queue_rounds: int = 0
    in_queue: bool = False
    left_queue_at: datetime | None = None
    operators_rung: list[str] = field(default_factory=list)
    interfaces_rung: list[str] = field(default_factory=list)
    answered_at: datetime | None = None
    operator: str | None = None
    operator_interface: str | None = None
    operator_channel: str | None = None
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    complete_reason: str | None = None
    abandoned: bool = False
    queue_status: str | None = None
    transferred_to: str | None = None
    transferred_at: datetime | None = None
    first_hangup_request: str | None = None  # "HangupRequest" (a party) or "SoftHangupRequest"
    ended_at: datetime | None = None
    hangup_cause: int | None = None
    hangup_cause_txt: str | None = None
    gap: bool = False
    gap_started_at: datetime | None = None
    # The caller asked for privacy (presentation restricted): seen once, kept.
    private: bool = False
    # Queue rounds that timed out (Emergency112Overflow); the last round counted.
    overflows: int = 0
    overflow_round: int = 0
    # queued_at / answered_at only read from a channel list after a gap (to the second, in the
    # listener's clock): Asterisk's HoldTime / TalkTime correct them when they come.
    queue_estimated: bool = False
    answer_estimated: bool = False

    @property
    def answer_seconds(self) -> int | None:
        """From the call reaching the PBX to an operator answering, the IVR included."""
        if self.answered_at is None:
            return None
        return max(int((self.answered_at - self.started_at).total_seconds()), 0)

    @property
    def is_final(self) -> bool:
        return self.ended_at is not None or self.gap

    @property
    def outcome(self) -> str:
        if not self.is_final:
            if self.answered_at is not None:
                return "connected"
            if self.queued_at is not None:
                return "ringing" if self.operators_rung else "queued"
            return "in_ivr"
        if self.answered_at is not None:
            return "answered"
        if self.queue_status in UNANSWERED_QUEUE_STATUSES:
            return "unanswered"
        if self.abandoned or self.queued_at is not None:
            return "abandoned_in_queue"
        if self.hangup_cause in FAILURE_CAUSES:
            return "failed"
        return "abandoned_in_ivr"

    @property
    def ended_by(self) -> str | None:
        if not self.is_final or self.ended_at is None:
            return None
        outcome = self.outcome
        if outcome == "answered":
            if self.transferred_to is None and self.complete_reason in ("caller", "agent"):
                return "caller" if self.complete_reason == "caller" else "operator"
            return "caller" if self.first_hangup_request == "HangupRequest" else "system"
        if outcome in ("abandoned_in_queue", "abandoned_in_ivr"):
            return "caller"
        return "system"

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state, so a restarted listener resumes the call (see from_snapshot)."""
        # By hand, not dataclasses.asdict (a deep copy): this runs for every changed call.
        data: dict[str, Any] = {}
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            if name in _TIME_FIELDS:
                value = value.isoformat() if value is not None else None
            elif isinstance(value, list):
                value = list(value)
            data[name] = value
        return data

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> CallState:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in _TIME_FIELDS:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in fields(CallState))


@dataclass(frozen=True, slots=True)
class Tracked:
    """What one frame meant: its time, the call it belongs to, and the call if it changed."""

    event_time: datetime
    call_uniqueid: str | None
    changed: CallState | None


def event_time(frame: Frame, received_at: datetime) -> datetime:
    """Asterisk's own Timestamp (timestampevents = yes) when present, else the arrival time.

    >>> event_time(Frame([("Event", "Hangup"), ("Timestamp", "1795828504.032591")]),
    ...            datetime(2030, 1, 1, tzinfo=UTC)).isoformat()
    '2026-11-28T01:15:04.032591+00:00'
    """
    stamp = frame.get("Timestamp")
    if stamp:
        try:
            return datetime.fromtimestamp(float(stamp), UTC)
        except (ValueError, OverflowError, OSError):  # OSError: "Timestamp: 1e18"
            pass
    return received_at


_FACT_NAMES = tuple(
    f.name
    for f in fields(CallState)
    if f.name not in ("last_event_at", "operators_rung", "interfaces_rung")
)


def _facts(state: CallState) -> tuple[Any, ...]:
    """Everything that matters about a call, cheap to compare (not the last event's time)."""
    return (len(state.operators_rung), *(getattr(state, name) for name in _FACT_NAMES))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


class CallTracker:
    def __init__(self, *, inbound_context: str, inbound_extensions: Collection[str]) -> None:
        self.inbound_context = inbound_context
        self.inbound_extensions = frozenset(inbound_extensions)
        self.calls: dict[str, CallState] = {}
        self.finished: OrderedDict[str, CallState] = OrderedDict()
        self._by_linkedid: dict[str, str] = {}
        self._candidates: OrderedDict[str, tuple[Frame, datetime]] = OrderedDict()
        # The latest event time seen: when a gap begins, in the PBX's clock when it sends one.
        self.last_event_time: datetime | None = None

    # -- resuming ---------------------------------------------------------------------------

    def resume(self, states: Iterable[CallState]) -> None:
        """Pick up calls that were open when the previous listener stopped."""
        for state in states:
            target = self.finished if state.is_final else self.calls
            target[state.uniqueid] = state
            self._by_linkedid[state.linkedid] = state.uniqueid

    def open_calls(self) -> list[CallState]:
        return list(self.calls.values())

    def close_gap(self, alive: Collection[str], gap_started_at: datetime) -> list[CallState]:
        """After a lost connection: open calls whose channel is gone ended during the gap."""
        closed = []
        for uniqueid in [u for u in self.calls if u not in alive]:
            state = self.calls.pop(uniqueid)
            state.gap = True
            # Never before the last event seen of it (a call that began after the gap began).
            state.gap_started_at = max(gap_started_at, state.last_event_at)
            self._finish(state)
            closed.append(state)
        return closed

    # -- events -----------------------------------------------------------------------------

    def feed(self, frame: Frame, received_at: datetime) -> Tracked:
        when = event_time(frame, received_at)
        if not frame.is_event or frame.action_id is not None:
            # Replies and list items (Status, CoreShowChannel...) describe, they do not change.
            return Tracked(when, None, None)
        if self.last_event_time is None or when > self.last_event_time:
            self.last_event_time = when
        name = frame.name
        uniqueid = frame.get("Uniqueid")
        state = self._find(uniqueid) if uniqueid else None
        if state is None and name in _TRANSFER_PARTIES:
            state = self._transferred(frame, _TRANSFER_PARTIES[name])
        if state is None:
            if name == "AgentComplete" and uniqueid is None:
                # After a Redirect AgentComplete names only the member: match its interface.
                state = self._by_interface(frame.get("Interface"))
            elif uniqueid is not None and name in ("Newchannel", "Newexten"):
                state = self._maybe_start(frame, uniqueid, when)
            elif uniqueid is not None and name == "Hangup":
                self._candidates.pop(uniqueid, None)
        if state is None:
            linked = frame.get("Linkedid")
            owner = self._by_linkedid.get(linked) if linked else None
            return Tracked(when, owner, None)
        changed = self._apply(state, frame, name, when)
        return Tracked(when, state.uniqueid, state if changed else None)

    def _find(self, uniqueid: str) -> CallState | None:
        return self.calls.get(uniqueid) or self.finished.get(uniqueid)

    def _transferred(self, frame: Frame, parties: tuple[str, ...]) -> CallState | None:
        """The call a transfer event is about: a party that is the call's own channel first,
        then a party in the call's Linkedid group."""
        for party in parties:
            uniqueid = frame.get(f"{party}Uniqueid")
            if uniqueid and (state := self._find(uniqueid)) is not None:
                return state
        for party in parties:
            linked = frame.get(f"{party}Linkedid")
            owner = self._by_linkedid.get(linked) if linked else None
            if owner is not None and (state := self._find(owner)) is not None:
                return state
        return None

    def _by_interface(self, interface: str | None) -> CallState | None:
        if not interface:
            return None
        candidates = [
            s
            for s in (*self.calls.values(), *reversed(self.finished.values()))
            if s.talk_seconds is None and not s.abandoned and s.queue_status is None
        ]
        answered = [s for s in candidates if s.operator_interface == interface]
        if answered:
            return answered[0]
        # AgentConnect was lost in a gap: the one call that rang this member, if only one did.
        rang = [
            s
            for s in candidates
            if (s.answered_at is None or s.answer_estimated) and interface in s.interfaces_rung
        ]
        return rang[0] if len(rang) == 1 else None

    def adopt(self, state: CallState, frame: Frame) -> None:
        """Track a call found otherwise than by its first events (a channel list)."""
        self.calls[state.uniqueid] = state
        self._by_linkedid[state.linkedid] = state.uniqueid
        self._update_caller_id(state, frame, "Newchannel")

    def is_inbound(self, frame: Frame) -> bool:
        return self._is_inbound(frame)

    def _is_inbound(self, frame: Frame) -> bool:
        return (
            frame.get("Context") == self.inbound_context
            and frame.get("Exten") in self.inbound_extensions
        )

    def _maybe_start(self, frame: Frame, uniqueid: str, when: datetime) -> CallState | None:
        if not self._is_inbound(frame):
            return None
        if frame.name == "Newchannel":
            if frame.get("ChannelState") != _RING_STATE:
                # Maybe a dial leg, maybe a caller: its first dialplan step will tell.
                self._candidates[uniqueid] = (frame, when)
                if len(self._candidates) > MAX_CANDIDATES:
                    self._candidates.popitem(last=False)
                return None
            first, started = frame, when
        else:
            if frame.get("Application") in _DIAL_APPS:
                self._candidates.pop(uniqueid, None)
                return None
            first, started = self._candidates.pop(uniqueid, (frame, when))
        state = CallState(
            uniqueid=uniqueid,
            linkedid=first.get("Linkedid") or uniqueid,
            channel=first.get("Channel") or "",
            started_at=started,
            last_event_at=started,
        )
        self.calls[uniqueid] = state
        self._by_linkedid[state.linkedid] = uniqueid
        self._update_caller_id(state, first, first.name)
        return state

    def _update_caller_id(self, state: CallState, frame: Frame, name: str) -> bool:
        num, cid_name = frame.get("CallerIDNum"), frame.get("CallerIDName")
        authoritative = name in ("Newchannel", "NewCallerid")
        changed = False
        if name == "NewCallerid" and not state.private and restricted(frame.get("CID-CallingPres")):
            state.private = changed = True
        # Any event on the channel repeats its caller ID: it fills in a missed NewCallerid.
        if num not in (None, state.caller_id_raw) and (
            authoritative or state.caller_id_raw == "<unknown>"
        ):
            state.caller_id_raw, changed = str(num), True
        if cid_name not in (None, state.caller_id_name) and (
            authoritative or state.caller_id_name == "<unknown>"
        ):
            state.caller_id_name, changed = str(cid_name), True
        return changed

    def _apply(self, state: CallState, frame: Frame, name: str, when: datetime) -> bool:
        if when > state.last_event_at:
            state.last_event_at = when
        handler = _HANDLERS.get(name)
        if name == "VarSet" and frame.get("Variable") not in _VARIABLES:
            handler = None  # the bulk of the stream: only QUEUESTATUS and CALLER_PRES matter
        elif name == "UserEvent" and frame.get("UserEvent") != OVERFLOW_EVENT:
            handler = None
        own = frame.get("Uniqueid") == state.uniqueid
        if handler is None:
            return own and self._update_caller_id(state, frame, name)
        before = _facts(state)
        if own:
            self._update_caller_id(state, frame, name)
        handler(self, state, frame, when)
        return _facts(state) != before

    def _finish(self, state: CallState) -> None:
        self.calls.pop(state.uniqueid, None)
        self.finished[state.uniqueid] = state
        self.finished.move_to_end(state.uniqueid)
        while len(self.finished) > MAX_FINISHED:
            old, old_state = self.finished.popitem(last=False)
            if self._by_linkedid.get(old_state.linkedid) == old:
                del self._by_linkedid[old_state.linkedid]

    # -- handlers: each sets facts once, so repeats change nothing ----------------------------

    def _on_newexten(self, state: CallState, frame: Frame, when: datetime) -> None:
        if frame.get("Uniqueid") != state.uniqueid:
            return
        if frame.get("Application") == "AGI":
            state.ivr = True
        context = frame.get("Context")
        answered = state.answered_at is not None
        if context and context != self.inbound_context and answered and not state.transferred_to:
            # The answered caller now runs another context: it was transferred (e.g. Redirect).
            state.transferred_to = f"{context},{frame.get('Exten') or ''}"
            state.transferred_at = when

    def _on_join(self, state: CallState, frame: Frame, when: datetime) -> None:
        if state.queued_at is None:
            state.queued_at = when
            state.queue = frame.get("Queue")
            state.queue_position = _int(frame.get("Position"))
        elif not _rejoins(state, when):
            return  # the same join delivered again
        else:
            # Queued again after a timeout: only the last round decides how the call ended.
            state.abandoned = False
            state.queue_status = None
        state.in_queue = True
        state.queue_rounds += 1

    def _on_leave(self, state: CallState, frame: Frame, when: datetime) -> None:
        if state.in_queue:
            state.in_queue = False
            state.left_queue_at = when

    def _on_agent_called(self, state: CallState, frame: Frame, when: datetime) -> None:
        member = frame.get("MemberName") or frame.get("Interface") or ""
        if member not in state.operators_rung:
            state.operators_rung.append(member)
        interface = frame.get("Interface")
        if interface and interface not in state.interfaces_rung:
            state.interfaces_rung.append(interface)

    def _on_connect(self, state: CallState, frame: Frame, when: datetime) -> None:
        if state.answered_at is None:
            state.answered_at = when
            state.operator = frame.get("MemberName")
            state.operator_interface = frame.get("Interface")
            state.operator_channel = frame.get("DestChannel")
            state.wait_seconds = _waited(state, frame, when)
            _joined_before(state, frame, when, state.wait_seconds)

    def _on_complete(self, state: CallState, frame: Frame, when: datetime) -> None:
        if state.talk_seconds is None:
            state.talk_seconds = _int(frame.get("TalkTime"))
            if state.answered_at is None or state.answer_estimated:
                # AgentConnect was missed (an AMI gap): Asterisk's TalkTime says when it was.
                state.answered_at = when - timedelta(seconds=state.talk_seconds or 0)
                state.answer_estimated = False
            state.complete_reason = frame.get("Reason")
            if state.wait_seconds is None:
                state.wait_seconds = _int(frame.get("HoldTime"))
            if state.operator is None:
                state.operator = frame.get("MemberName")
                state.operator_interface = frame.get("Interface")

    def _on_abandon(self, state: CallState, frame: Frame, when: datetime) -> None:
        if not state.abandoned:
            state.abandoned = True
            if state.answered_at is None:
                state.wait_seconds = _waited(state, frame, when)
                _joined_before(state, frame, when, state.wait_seconds)
            if state.queue_position is None:
                state.queue_position = _int(frame.get("OriginalPosition"))

    def _on_varset(self, state: CallState, frame: Frame, when: datetime) -> None:
        if frame.get("Uniqueid") != state.uniqueid:
            return
        variable = frame.get("Variable")
        if variable == QUEUE_STATUS_VARIABLE:
            state.queue_status = frame.get("Value")
        elif variable == PRESENTATION_VARIABLE and restricted(frame.get("Value")):
            state.private = True

    def _on_overflow(self, state: CallState, frame: Frame, when: datetime) -> None:
        """The dialplan's Emergency112Overflow: this queue round timed out (counted once)."""
        if frame.get("Uniqueid") == state.uniqueid and state.queue_rounds > state.overflow_round:
            state.overflow_round = state.queue_rounds
            state.overflows += 1

    def _on_hangup_request(self, state: CallState, frame: Frame, when: datetime) -> None:
        if frame.get("Uniqueid") == state.uniqueid and state.first_hangup_request is None:
            state.first_hangup_request = frame.name

    def _on_transfer(self, state: CallState, frame: Frame, when: datetime) -> None:
        if state.transferred_to is not None or frame.get("Result", "Success") != "Success":
            return
        if frame.name == "BlindTransfer":
            context, target = frame.get("Context"), frame.get("Extension")
        else:
            # Attended: where the transferer's second call went (its dialplan context and
            # extension), else the application or the party that took the call.
            context = frame.get("SecondTransfererContext")
            target = frame.get("SecondTransfererExten")
            if not target:
                context = None
                target = (
                    frame.get("DestApp")
                    or _known(frame.get("TransferTargetCallerIDNum"))
                    or frame.get("TransferTargetChannel")
                )
        state.transferred_to = f"{context or ''},{target or 'transfer'}".lstrip(",")
        state.transferred_at = when

    def _on_hangup(self, state: CallState, frame: Frame, when: datetime) -> None:
        if frame.get("Uniqueid") != state.uniqueid or state.ended_at is not None:
            return
        state.ended_at = when
        state.hangup_cause = _int(frame.get("Cause"))
        state.hangup_cause_txt = frame.get("Cause-txt")
        self._finish(state)


def _known(value: str | None) -> str | None:
    return None if value in (None, "", "<unknown>") else value


def _rejoins(state: CallState, when: datetime) -> bool:
    """A join after the caller left the queue, while the call is up, is a new round."""
    return (
        state.ended_at is None
        and not state.in_queue
        and state.left_queue_at is not None
        and when >= state.left_queue_at
    )


def _waited(state: CallState, frame: Frame, when: datetime) -> int | None:
    """Asterisk's HoldTime for one round; over several rounds, the time since the first join."""
    if state.queue_rounds > 1 and state.queued_at is not None:
        return int((when - state.queued_at).total_seconds())
    return _int(frame.get("HoldTime"))


def _joined_before(state: CallState, frame: Frame, when: datetime, held: int | None) -> None:
    """QueueCallerJoin was lost (an AMI gap): Asterisk's HoldTime says when it was."""
    if state.queue is None:
        state.queue = frame.get("Queue")
    if (state.queued_at is None or state.queue_estimated) and held is not None:
        state.queued_at = when - timedelta(seconds=held)
        state.queue_estimated = False


_HANDLERS = {
    "Newexten": CallTracker._on_newexten,
    "QueueCallerJoin": CallTracker._on_join,
    "AgentCalled": CallTracker._on_agent_called,
    "AgentConnect": CallTracker._on_connect,
    "AgentComplete": CallTracker._on_complete,
    "QueueCallerAbandon": CallTracker._on_abandon,
    "QueueCallerLeave": CallTracker._on_leave,
    "VarSet": CallTracker._on_varset,
    "HangupRequest": CallTracker._on_hangup_request,
    "SoftHangupRequest": CallTracker._on_hangup_request,
    "UserEvent": CallTracker._on_overflow,
    "BlindTransfer": CallTracker._on_transfer,
    "AttendedTransfer": CallTracker._on_transfer,
    "Hangup": CallTracker._on_hangup,
}
