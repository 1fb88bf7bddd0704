"""Blind and attended transfers as Asterisk 12+ sends them: prefixed channel snapshots only.

The call up to the operator's answer is trace 09's real recording; the transfer events are
built with the headers Asterisk 22's documentation lists for BlindTransfer and
AttendedTransfer (channel snapshots prefixed Transferer, Transferee, OrigTransferer,
SecondTransferer, TransferTarget; no plain Uniqueid or Linkedid).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.ami.call_state import Tracked
from callcenter.ami.frames import Frame
from callcenter.ami.tracker import CallTracker
from tests.conftest import TRACES

TRACE = TRACES / "09-transfer-redirect"
CALLER = ("Local/112@from-pstn-00000015;2", "1795828723.43")
OPERATOR = ("Local/op2@operators-00000016;1", "1795828729.44")
LINKEDID = "1795828723.42"


def _snapshot(
    prefix: str, channel: str, uniqueid: str, context: str, exten: str
) -> list[tuple[str, str]]:
    """A channel snapshot as ast_manager_build_channel_state_string_prefix writes it."""
    return [
        (f"{prefix}Channel", channel),
        (f"{prefix}ChannelState", "6"),
        (f"{prefix}ChannelStateDesc", "Up"),
        (f"{prefix}CallerIDNum", "081246813579"),
        (f"{prefix}CallerIDName", "Maria Bano"),
        (f"{prefix}ConnectedLineNum", "<unknown>"),
        (f"{prefix}ConnectedLineName", "<unknown>"),
        (f"{prefix}Language", "en"),
        (f"{prefix}AccountCode", ""),
        (f"{prefix}Context", context),
        (f"{prefix}Exten", exten),
        (f"{prefix}Priority", "1"),
        (f"{prefix}Uniqueid", uniqueid),
        (f"{prefix}Linkedid", LINKEDID),
    ]


def _bridge(prefix: str, uniqueid: str) -> list[tuple[str, str]]:
    return [
        (f"{prefix}Uniqueid", uniqueid),
        (f"{prefix}Type", "basic"),
        (f"{prefix}Technology", "simple_bridge"),
        (f"{prefix}Creator", "<unknown>"),
        (f"{prefix}Name", "<unknown>"),
        (f"{prefix}NumChannels", "2"),
        (f"{prefix}VideoSourceMode", "none"),
    ]


def _answered() -> tuple[CallTracker, datetime]:
    """Trace 09 up to the caller entering the bridge with the operator."""
    tracker = CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])
    for line in (TRACE / "ami.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["dir"] != "rx" or row["type"] != "event":
            continue
        frame = Frame([(k, v) for k, v in row["headers"]])
        when = datetime.fromtimestamp(row["t_wall"], UTC)
        tracker.feed(frame, when)
        if frame.name == "BridgeEnter" and frame.get("Uniqueid") == CALLER[1]:
            return tracker, when
    raise AssertionError("trace 09 has no BridgeEnter of the caller")


def _stamp(when: datetime) -> tuple[str, str]:
    return ("Timestamp", f"{when.timestamp():.6f}")


def _hangup(when: datetime) -> Frame:
    channel, uniqueid = CALLER
    return Frame(
        [
            ("Event", "Hangup"),
            _stamp(when),
            ("Channel", channel),
            ("Uniqueid", uniqueid),
            ("Linkedid", LINKEDID),
            ("Cause", "16"),
            ("Cause-txt", "Normal Clearing"),
        ]
    )


def _finish(tracker: CallTracker, transfer: Frame, when: datetime) -> Tracked:
    tracked = tracker.feed(transfer, when)
    tracker.feed(_hangup(when + timedelta(seconds=40)), when + timedelta(seconds=40))
    return tracked


def test_a_blind_transfer_to_the_police_is_kept_with_when_and_to_whom() -> None:
    tracker, answered = _answered()
    when = answered + timedelta(seconds=20)
    transfer = Frame(
        [
            ("Event", "BlindTransfer"),
            ("Privilege", "call,all"),
            _stamp(when),
            ("Result", "Success"),
            *_snapshot("Transferer", *OPERATOR, "operators", "op2"),
            *_bridge("TransfererBridge", "974e33af-d840-4e9f-9c0e-59b4de748668"),
            *_snapshot("Transferee", *CALLER, "from-pstn", "112"),
            ("IsExternal", "No"),
            ("Context", "agencies"),
            ("Extension", "110"),
        ]
    )
    tracked = _finish(tracker, transfer, when)
    assert tracked.call_uniqueid == CALLER[1]  # so the listener stores the event with the call
    state = tracker.finished[CALLER[1]]
    assert (state.transferred_to, state.transferred_at) == ("agencies,110", when)
    assert state.outcome == "answered"


@pytest.mark.parametrize("transferee", [True, False], ids=["transferee", "transferers-only"])
def test_an_attended_transfer_names_where_the_operators_second_call_went(
    transferee: bool,
) -> None:
    tracker, answered = _answered()
    when = answered + timedelta(seconds=25)
    target = ("Local/110@agencies-00000018;1", "1795828760.48")
    headers = [
        ("Event", "AttendedTransfer"),
        ("Privilege", "call,all"),
        _stamp(when),
        ("Result", "Success"),
        *_snapshot("OrigTransferer", *OPERATOR, "operators", "op2"),
        *_bridge("OrigBridge", "974e33af-d840-4e9f-9c0e-59b4de748668"),
        *_snapshot(
            "SecondTransferer", "Local/op2@operators-00000019;1", "1795828755.47", "agencies", "110"
        ),
        *_bridge("SecondBridge", "0a1b2c3d-0000-4e9f-9c0e-59b4de748668"),
        ("DestType", "Bridge"),
        ("DestBridgeUniqueid", "974e33af-d840-4e9f-9c0e-59b4de748668"),
        *(_snapshot("Transferee", *CALLER, "from-pstn", "112") if transferee else []),
        *_snapshot("TransferTarget", *target, "agencies", "110"),
        ("IsExternal", "No"),
    ]
    tracked = _finish(tracker, Frame(headers), when)
    assert tracked.call_uniqueid == CALLER[1]
    state = tracker.finished[CALLER[1]]
    assert (state.transferred_to, state.transferred_at) == ("agencies,110", when)


def test_a_failed_transfer_is_stored_but_is_no_transfer() -> None:
    tracker, answered = _answered()
    when = answered + timedelta(seconds=20)
    transfer = Frame(
        [
            ("Event", "BlindTransfer"),
            _stamp(when),
            ("Result", "Fail"),
            *_snapshot("Transferer", *OPERATOR, "operators", "op2"),
            *_snapshot("Transferee", *CALLER, "from-pstn", "112"),
            ("IsExternal", "No"),
            ("Context", "agencies"),
            ("Extension", "110"),
        ]
    )
    tracked = _finish(tracker, transfer, when)
    assert tracked.call_uniqueid == CALLER[1]
    assert tracker.finished[CALLER[1]].transferred_to is None
