"""A call as the tracker sees it: the facts set once, the outcome derived from them.

Also what one frame meant (``Tracked``) and the frame's time (``event_time``). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from callcenter.ami.frames import Frame

# Queue() statuses that mean "the queue gave up", as opposed to a caller who hung up.
UNANSWERED_QUEUE_STATUSES = frozenset(
    {"TIMEOUT", "FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL"}
)
# Hangup causes that mean the network failed the call rather than someone ending it.
FAILURE_CAUSES = frozenset({1, 3, 21, 27, 34, 38, 41, 42, 44, 47, 50, 58, 88, 102, 111, 127})

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


def facts(state: CallState) -> tuple[Any, ...]:
    """Everything that matters about a call, cheap to compare (not the last event's time)."""
    return (len(state.operators_rung), *(getattr(state, name) for name in _FACT_NAMES))
