"""After a (re)connect: ask Asterisk which channels are up and who waits in a queue, and take
the answers' items at their place in the stream. An open call whose channel is not in the
channel list ended during the gap: it is closed and marked gap (what each item says about a
call is in lists.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from asterisk.manager import ManagerException

from callcenter.ami import lists
from callcenter.ami.batch import Batch
from callcenter.ami.call_state import event_time
from callcenter.ami.client import AmiSession
from callcenter.ami.counters import Counters
from callcenter.ami.frames import Frame
from callcenter.ami.tracker import CallTracker
from callcenter.db import utcnow

# The listener's logger, as before this left listener.py: log filters and alerts keep matching.
log = logging.getLogger("callcenter.ami.listener")


@dataclass(slots=True)
class _Reconcile:
    gap_started_at: datetime | None
    alive: set[str] = field(default_factory=set)


class GapLists:
    """The CoreShowChannels and QueueStatus lists in flight, by ActionID. Requested on the
    connection thread, their items taken on the consumer thread."""

    def __init__(self, tracker: CallTracker, counters: Counters) -> None:
        self.tracker = tracker
        self.counters = counters
        self.channel_lists: dict[str, _Reconcile] = {}
        self.queue_lists: set[str] = set()  # ActionIDs of QueueStatus sent at reconnect

    def request(self, session: AmiSession, gap_started: datetime | None) -> None:
        action_id = session.new_action_id()
        self.channel_lists[action_id] = _Reconcile(gap_started)
        try:
            session.send_raw({"Action": "CoreShowChannels", "ActionID": action_id})
            queue_status = session.new_action_id()
            self.queue_lists.add(queue_status)
            session.send_raw({"Action": "QueueStatus", "ActionID": queue_status})
        except ManagerException as exc:
            log.warning("AMI: reconcile request failed (%s)", exc)

    def channel_item(
        self, action_id: str, frame: Frame, batch: Batch, known_gap: datetime | None
    ) -> None:
        """CoreShowChannels after a reconnect; ``known_gap``: when the gap began, if the
        request did not say."""
        pending = self.channel_lists[action_id]
        if frame.name == "CoreShowChannel":
            uniqueid = frame.get("Uniqueid")
            if uniqueid:
                pending.alive.add(uniqueid)
                # Where the call is now (queued, connected), or a call begun during the gap.
                batch.add(
                    None, lists.channel_listed(self.tracker, frame, event_time(frame, utcnow()))
                )
        elif frame.name == "CoreShowChannelsComplete":
            del self.channel_lists[action_id]
            began = pending.gap_started_at or known_gap or utcnow()
            closed = self.tracker.close_gap(pending.alive, began)
            self.counters.gap_closed_calls += len(closed)
            for state in closed:
                log.warning(
                    "call %s ended during the AMI gap: closed, marked gap",
                    state.uniqueid,
                    extra={"uniqueid": state.uniqueid, "linkedid": state.linkedid},
                )
                batch.add(None, state)

    def queue_item(self, action_id: str, frame: Frame, received_at: datetime, batch: Batch) -> None:
        """QueueStatus after a reconnect: each QueueEntry is a caller waiting now."""
        if frame.name == "QueueEntry":
            batch.add(None, lists.queue_entry(self.tracker, frame, event_time(frame, received_at)))
        elif frame.name == "QueueStatusComplete":
            self.queue_lists.discard(action_id)
