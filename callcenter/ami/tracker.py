"""The call state machine: AMI frames in, call changes out. Pure: no I/O, no clock.

A 112 call is the channel that runs the inbound context and extension (``from-pstn,112`` by
default): the trunk channel of a PJSIP call, the ``;2`` half of a Local channel. It is keyed by
that channel's Uniqueid and grouped by its Linkedid. The call keeps *facts* (when it joined the
queue, who answered, Asterisk's HoldTime/TalkTime, the hangup) and derives its outcome from them,
so a duplicated or late event (``AgentComplete`` after ``Hangup``, as after a Redirect) changes
nothing or completes the call, whatever the order.

The call's facts are in call_state.py, what each event does to them in event_handlers.py.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable
from datetime import datetime

from callcenter.ami.call_state import CallState, Tracked, event_time, facts
from callcenter.ami.event_handlers import HANDLERS, OVERFLOW_EVENT, VARIABLES
from callcenter.ami.frames import Frame
from callcenter.presentation import restricted

# Dial legs: a Local ';1' half executes the inbound extension as "AppDial2", it is not a caller.
_DIAL_APPS = ("AppDial", "AppDial2")
_RING_STATE = "4"
# Finished calls kept in memory for late events; channels seen but not (yet) calls.
MAX_FINISHED = 5000
MAX_CANDIDATES = 5000

# Since Asterisk 12 a transfer names its channels only through prefixed snapshots (no plain
# Uniqueid or Linkedid): the caller is usually the transferee; the others say whose call it was.
_TRANSFER_PARTIES = {
    "BlindTransfer": ("Transferee", "Transferer"),
    "AttendedTransfer": ("Transferee", "OrigTransferer", "SecondTransferer", "TransferTarget"),
}


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
            self.finish(state)
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
        handler = HANDLERS.get(name)
        if name == "VarSet" and frame.get("Variable") not in VARIABLES:
            handler = None  # the bulk of the stream: only QUEUESTATUS and CALLER_PRES matter
        elif name == "UserEvent" and frame.get("UserEvent") != OVERFLOW_EVENT:
            handler = None
        own = frame.get("Uniqueid") == state.uniqueid
        if handler is None:
            return own and self._update_caller_id(state, frame, name)
        before = facts(state)
        if own:
            self._update_caller_id(state, frame, name)
        handler(self, state, frame, when)
        return facts(state) != before

    def finish(self, state: CallState) -> None:
        self.calls.pop(state.uniqueid, None)
        self.finished[state.uniqueid] = state
        self.finished.move_to_end(state.uniqueid)
        while len(self.finished) > MAX_FINISHED:
            old, old_state = self.finished.popitem(last=False)
            if self._by_linkedid.get(old_state.linkedid) == old:
                del self._by_linkedid[old_state.linkedid]
