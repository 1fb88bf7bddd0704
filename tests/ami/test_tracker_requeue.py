"""The shipped dialplan queues a caller again after a queue timeout (asterisk/extensions.conf).

Trace 04 is a real timeout up to the overflow UserEvent; the second round that follows is built
from its own frames, as Asterisk would send it, with later times.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from callcenter.ami.call_state import CallState
from callcenter.ami.frames import Frame
from callcenter.ami.tracker import CallTracker
from tests.conftest import TRACES

TRACE = TRACES / "04-queue-timeout"
CALLER = "Local/112@from-pstn-0000000f;2"


def _recorded_until_overflow() -> list[tuple[Frame, datetime]]:
    frames = []
    for line in (TRACE / "ami.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["dir"] != "rx" or row["type"] != "event":
            continue
        frame = Frame([(k, v) for k, v in row["headers"]])
        frames.append((frame, datetime.fromtimestamp(row["t_wall"], UTC)))
        if frame.name == "UserEvent":
            return frames
    raise AssertionError("trace 04 has no overflow UserEvent")


def _like(template: Frame, event: str, **extra: str) -> Frame:
    """An event on the caller channel: its channel headers, then the event's own."""
    headers = [(k, v) for k, v in template.headers if k != "Event" and k not in extra]
    return Frame([("Event", event), *headers, *extra.items()])


def _second_round(first: list[tuple[Frame, datetime]], ending: str) -> CallState:
    tracker = CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])
    for frame, when in first:
        tracker.feed(frame, when)
    channel = next(f for f, _ in first if f.name == "QueueCallerJoin")
    member = {"MemberName": "Operator Andi", "Interface": "Local/op1@operators/n"}
    t = first[-1][1] + timedelta(seconds=8)  # after the "all busy" message
    rounds = [
        _like(channel, "QueueCallerJoin", Queue="emergency-112", Position="1", Count="1"),
        _like(channel, "AgentCalled", Queue="emergency-112", **member),
    ]
    if ending == "answered":
        rounds += [
            _like(channel, "AgentConnect", Queue="emergency-112", HoldTime="4", **member),
            _like(channel, "QueueCallerLeave", Queue="emergency-112", Count="0"),
            _like(channel, "AgentComplete", HoldTime="4", TalkTime="30", Reason="caller", **member),
        ]
    else:
        rounds += [
            _like(channel, "QueueCallerAbandon", Queue="emergency-112", HoldTime="6"),
            _like(channel, "QueueCallerLeave", Queue="emergency-112", Count="0"),
        ]
    rounds += [_like(channel, "HangupRequest"), _like(channel, "Hangup", Cause="16")]
    for step, frame in enumerate(rounds):
        tracker.feed(frame, t + timedelta(seconds=4 * step))
    state = tracker.finished.get(channel["Uniqueid"])
    assert state is not None
    return state


def test_a_caller_answered_in_the_second_round_is_answered() -> None:
    first = _recorded_until_overflow()
    state = _second_round(first, "answered")
    assert state.outcome == "answered"
    assert state.operator == "Operator Andi"
    assert state.queue_rounds == 2
    first_join = next(w for f, w in first if f.name == "QueueCallerJoin")
    assert state.queued_at == first_join
    # The whole wait, from the first join: two rounds and the overflow message between them.
    assert state.answered_at is not None
    assert state.wait_seconds == int((state.answered_at - first_join).total_seconds())
    assert state.wait_seconds > 25


def test_a_caller_who_gives_up_in_the_second_round_abandoned_in_the_queue() -> None:
    state = _second_round(_recorded_until_overflow(), "abandoned")
    assert state.outcome == "abandoned_in_queue"
    assert state.ended_by == "caller"


def test_the_first_join_delivered_again_is_not_a_second_round() -> None:
    first = _recorded_until_overflow()
    tracker = CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])
    for frame, when in first:
        tracker.feed(frame, when)
    join, joined_at = next((f, w) for f, w in first if f.name == "QueueCallerJoin")
    tracker.feed(join, joined_at)  # a re-delivery, with its original time
    state = tracker.calls[join["Uniqueid"]]
    assert state.queue_rounds == 1
    assert state.queue_status == "TIMEOUT"
    assert state.outcome == "ringing"  # still up, after one timed-out round


def test_a_second_round_survives_a_listener_restart() -> None:
    """The snapshot a restarted listener resumes from keeps the queue rounds."""
    first = _recorded_until_overflow()
    tracker = CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])
    for frame, when in first:
        tracker.feed(frame, when)
    (state,) = tracker.open_calls()
    snapshot = json.loads(json.dumps(state.snapshot()))
    assert CallState.from_snapshot(snapshot) == state
