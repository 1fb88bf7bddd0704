"""What each AMI event does to a call: one handler an event name, each setting facts once,
so a repeated or late event changes nothing. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from callcenter.ami.call_state import CallState
from callcenter.ami.frames import Frame
from callcenter.presentation import restricted


class CallTrackerView(Protocol):
    """What a handler needs of the tracker (tracker.CallTracker), without importing it."""

    inbound_context: str

    def finish(self, state: CallState) -> None: ...


# Channel variables the tracker reads (VarSet): the queue's verdict, and the caller's
# presentation as the dialplan (CALLERID(pres)) and the IVR (agi_callingpres) put it.
QUEUE_STATUS_VARIABLE = "QUEUESTATUS"
PRESENTATION_VARIABLE = "CALLER_PRES"
VARIABLES = frozenset({QUEUE_STATUS_VARIABLE, PRESENTATION_VARIABLE})
OVERFLOW_EVENT = "Emergency112Overflow"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def on_newexten(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    if frame.get("Uniqueid") != state.uniqueid:
        return
    if frame.get("Application") == "AGI":
        state.ivr = True
    context = frame.get("Context")
    answered = state.answered_at is not None
    if context and context != tracker.inbound_context and answered and not state.transferred_to:
        # The answered caller now runs another context: it was transferred (e.g. Redirect).
        state.transferred_to = f"{context},{frame.get('Exten') or ''}"
        state.transferred_at = when


def on_join(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
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


def on_leave(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    if state.in_queue:
        state.in_queue = False
        state.left_queue_at = when


def on_agent_called(
    tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime
) -> None:
    member = frame.get("MemberName") or frame.get("Interface") or ""
    if member not in state.operators_rung:
        state.operators_rung.append(member)
    interface = frame.get("Interface")
    if interface and interface not in state.interfaces_rung:
        state.interfaces_rung.append(interface)


def on_connect(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    if state.answered_at is None:
        state.answered_at = when
        state.operator = frame.get("MemberName")
        state.operator_interface = frame.get("Interface")
        state.operator_channel = frame.get("DestChannel")
        state.wait_seconds = _waited(state, frame, when)
        _joined_before(state, frame, when, state.wait_seconds)


def on_complete(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
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


def on_abandon(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    if not state.abandoned:
        state.abandoned = True
        if state.answered_at is None:
            state.wait_seconds = _waited(state, frame, when)
            _joined_before(state, frame, when, state.wait_seconds)
        if state.queue_position is None:
            state.queue_position = _int(frame.get("OriginalPosition"))


def on_varset(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    if frame.get("Uniqueid") != state.uniqueid:
        return
    variable = frame.get("Variable")
    if variable == QUEUE_STATUS_VARIABLE:
        state.queue_status = frame.get("Value")
    elif variable == PRESENTATION_VARIABLE and restricted(frame.get("Value")):
        state.private = True


def on_overflow(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    """The dialplan's Emergency112Overflow: this queue round timed out (counted once)."""
    if frame.get("Uniqueid") == state.uniqueid and state.queue_rounds > state.overflow_round:
        state.overflow_round = state.queue_rounds
        state.overflows += 1


def on_hangup_request(
    tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime
) -> None:
    if frame.get("Uniqueid") == state.uniqueid and state.first_hangup_request is None:
        state.first_hangup_request = frame.name


def on_transfer(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
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


def on_hangup(tracker: CallTrackerView, state: CallState, frame: Frame, when: datetime) -> None:
    if frame.get("Uniqueid") != state.uniqueid or state.ended_at is not None:
        return
    state.ended_at = when
    state.hangup_cause = _int(frame.get("Cause"))
    state.hangup_cause_txt = frame.get("Cause-txt")
    tracker.finish(state)


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


HANDLERS: dict[str, Callable[[CallTrackerView, CallState, Frame, datetime], None]] = {
    "Newexten": on_newexten,
    "QueueCallerJoin": on_join,
    "AgentCalled": on_agent_called,
    "AgentConnect": on_connect,
    "AgentComplete": on_complete,
    "QueueCallerAbandon": on_abandon,
    "QueueCallerLeave": on_leave,
    "VarSet": on_varset,
    "HangupRequest": on_hangup_request,
    "SoftHangupRequest": on_hangup_request,
    "UserEvent": on_overflow,
    "BlindTransfer": on_transfer,
    "AttendedTransfer": on_transfer,
    "Hangup": on_hangup,
}
