"""What the listener hands the store: the raw events read and the calls they changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from callcenter.ami.call_state import CallState, Tracked
from callcenter.ami.frames import Frame
from callcenter.ami.identity import EventKeys


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 µs an event
class StoredEvent:
    frame: Frame
    event_time: datetime
    received_at: datetime
    call_uniqueid: str | None
    dedup_key: str = ""  # the event's identity (callcenter.ami.identity); "" for the frame's


@dataclass(slots=True)
class Batch:
    events: list[StoredEvent] = field(default_factory=list)
    calls: dict[str, CallState] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.calls)

    def add(self, event: StoredEvent | None, changed: CallState | None) -> None:
        if event is not None:
            self.events.append(event)
        if changed is not None:
            self.calls[changed.uniqueid] = changed

    def add_tracked(
        self, frame: Frame, tracked: Tracked, received_at: datetime, keys: EventKeys
    ) -> None:
        """What the tracker made of a frame: its event row (keyed by ``keys``, the stream's),
        if it belongs to a call, and the call's change."""
        event = None
        if tracked.call_uniqueid is not None:
            key = keys.key_of(frame.dedup_key)
            event = StoredEvent(frame, tracked.event_time, received_at, tracked.call_uniqueid, key)
        self.add(event, tracked.changed)
