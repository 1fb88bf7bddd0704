"""What Asterisk's channel and queue lists say about calls *now*, after a (re)connect.

The listener asks for ``CoreShowChannels`` and ``QueueStatus`` when it connects again (or when
a restarted listener resumes open calls). Events missed meanwhile are gone, so the lists are
the only witness of where each call is: a resumed call that joined the queue while nobody
listened is ``queued`` (not left ``in_ivr``), one already bridged to an operator is
``connected``, and a 112 call that began during the gap is tracked from here on.

A ``CoreShowChannel`` item, as Asterisk 22 sends it (trace 12):

>>> from callcenter.ami.frames import Frame
>>> from callcenter.ami.tracker import CallTracker
>>> from datetime import UTC, datetime
>>> tracker = CallTracker(inbound_context="from-pstn", inbound_extensions={"112"})
>>> now = datetime(2026, 11, 28, 1, 0, 8, tzinfo=UTC)
>>> item = Frame([("Event", "CoreShowChannel"), ("ActionID", "csc-1"),
...     ("Channel", "Local/112@from-pstn-00000024;2"), ("CallerIDNum", "081299887766"),
...     ("Context", "from-pstn"), ("Exten", "112"), ("Uniqueid", "1795828801.73"),
...     ("Linkedid", "1795828801.72"), ("Application", "Queue"),
...     ("ApplicationData", "emergency-112,,,,25"), ("Duration", "00:00:08"), ("BridgeId", "")])
>>> call = channel_listed(tracker, item, now)
>>> call.outcome, call.queue, call.started_at.isoformat()
('queued', 'emergency-112', '2026-11-28T01:00:00+00:00')
>>> entry = Frame([("Event", "QueueEntry"), ("Queue", "emergency-112"), ("Position", "1"),
...     ("Uniqueid", "1795828801.73"), ("Wait", "2"), ("ActionID", "qs-1")])
>>> queue_entry(tracker, entry, now).queued_at.isoformat()
'2026-11-28T01:00:06+00:00'
"""

from __future__ import annotations

from datetime import datetime, timedelta

from callcenter.ami.call_state import CallState, facts
from callcenter.ami.frames import Frame
from callcenter.ami.tracker import CallTracker

_DIAL_APPS = ("AppDial", "AppDial2")


def channel_listed(tracker: CallTracker, frame: Frame, when: datetime) -> CallState | None:
    """A ``CoreShowChannel`` item. Returns the call if it changed."""
    uniqueid = frame.get("Uniqueid")
    if not uniqueid or uniqueid in tracker.finished:
        return None
    state = tracker.calls.get(uniqueid)
    before = facts(state) if state is not None else None
    if state is None:
        if not tracker.is_inbound(frame) or frame.get("Application") in _DIAL_APPS:
            return None
        state = CallState(
            uniqueid=uniqueid,
            linkedid=frame.get("Linkedid") or uniqueid,
            channel=frame.get("Channel") or "",
            started_at=when - timedelta(seconds=_duration(frame.get("Duration"))),
            last_event_at=when,
        )
        tracker.adopt(state, frame)
    if frame.get("Application") == "Queue":
        if state.queued_at is None:
            # QueueStatus, which follows, says how long it has waited.
            state.queued_at = when
            state.queue = (frame.get("ApplicationData") or "").split(",", 1)[0] or None
            state.queue_rounds = max(state.queue_rounds, 1)
            state.in_queue = True
            state.queue_estimated = True
        if frame.get("BridgeId") and state.answered_at is None:
            # Answered while nobody listened; AgentComplete's TalkTime will say when.
            state.answered_at = when
            state.answer_estimated = True
            state.in_queue = False
    return state if before is None or facts(state) != before else None


def queue_entry(tracker: CallTracker, frame: Frame, when: datetime) -> CallState | None:
    """A ``QueueEntry`` item of QueueStatus: the caller has waited in that queue for ``Wait``
    seconds. Returns the call if it changed."""
    uniqueid = frame.get("Uniqueid")
    state = tracker.calls.get(uniqueid) if uniqueid else None
    if state is None:
        return None
    before = facts(state)
    waited = _int(frame.get("Wait"))
    joined = when - timedelta(seconds=waited) if waited is not None else when
    if state.queued_at is None or state.queue_estimated:
        state.queued_at = joined
        state.queue_estimated = True
    state.queue = frame.get("Queue") or state.queue
    state.queue_position = state.queue_position or _int(frame.get("Position"))
    state.queue_rounds = max(state.queue_rounds, 1)
    state.in_queue = state.answered_at is None
    return state if facts(state) != before else None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _duration(value: str | None) -> int:
    """``Duration: 00:00:12`` in seconds (0 when unreadable).

    >>> _duration("01:02:03"), _duration(None)
    (3723, 0)
    """
    try:
        hours, minutes, seconds = (int(part) for part in (value or "").split(":"))
    except ValueError:
        return 0
    return hours * 3600 + minutes * 60 + seconds
