"""Completing calls from Asterisk's own logs: queue_log, the CDR (cdr_csv Master.csv) and,
when configured, CEL (cel_custom, one JSON object a line): the hangup cause, the operator's
channel and times to the microsecond come only from CEL; without it times are whole seconds.

The listener's facts come first; the logs only fill what it missed (a call that started and
ended inside an AMI gap, a gap call's answer, talk time or end). A call known only from the
logs is stored with ``gap`` set: nobody saw it live.

queue_log lines (``time|callid|queue|agent|event|data1|data2|data3...``):

>>> line = "1795828483|1795828474.13|emergency-112|Operator Andi|CONNECT|3|1795828480.14|3"
>>> facts = {}
>>> read_queue_log_lines([line], facts, since=None)
>>> facts["1795828474.13"].operator, facts["1795828474.13"].wait_seconds
('Operator Andi', 3)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from callcenter.ami.call_state import CallState

# cdr_csv Master.csv columns with loguniqueid, loguserfield and newcdrcolumns.
CDR_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
)


@dataclass(slots=True)
class LoggedCall:
    uniqueid: str
    linkedid: str | None = None
    channel: str | None = None
    caller: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    queue: str | None = None
    queued_at: datetime | None = None
    position: int | None = None
    answered_at: datetime | None = None
    operator: str | None = None
    wait_seconds: int | None = None
    talk_seconds: int | None = None
    complete_reason: str | None = None
    abandoned: bool = False
    timed_out: bool = False
    last_seen: datetime | None = None
    operator_interface: str | None = None
    hangup_cause: int | None = None
    cel_answer: bool = False  # answered_at came from CEL (microseconds): queue_log keeps off it


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def read_queue_log_lines(
    lines: Iterable[str], facts: dict[str, LoggedCall], *, since: datetime | None
) -> None:
    for line in lines:
        parts = line.rstrip("\n").split("|")
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        when = datetime.fromtimestamp(int(parts[0]), UTC)
        if since is not None and when < since:
            continue
        uniqueid, queue, agent, event = parts[1], parts[2], parts[3], parts[4]
        data = [*parts[5:], "", "", "", ""]
        if uniqueid in ("", "NONE"):
            continue
        call = facts.setdefault(uniqueid, LoggedCall(uniqueid))
        call.last_seen = max(filter(None, (call.last_seen, when)))
        if event == "ENTERQUEUE":
            call.queue, call.queued_at = queue, when
            call.caller = call.caller or data[1] or None
            call.position = _int(data[2])
        elif event == "CONNECT":
            call.answered_at, call.operator = when, agent
            call.wait_seconds = _int(data[0])
        elif event in ("COMPLETECALLER", "COMPLETEAGENT"):
            call.operator = call.operator or agent
            call.wait_seconds = (
                call.wait_seconds if call.wait_seconds is not None else _int(data[0])
            )
            call.talk_seconds = _int(data[1])
            call.complete_reason = "caller" if event == "COMPLETECALLER" else "agent"
            call.ended_at = when
        elif event in ("ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"):
            call.abandoned = event == "ABANDON"
            call.timed_out = event != "ABANDON"
            call.wait_seconds = _int(data[2])
            call.ended_at = when


def read_cdr_rows(
    rows: Iterable[list[str]],
    facts: dict[str, LoggedCall],
    *,
    since: datetime | None,
    context: str,
    extensions: frozenset[str],
    tz: ZoneInfo,
) -> None:
    def at(text: str) -> datetime | None:
        if not text:
            return None
        return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)

    for values in rows:
        if len(values) < len(CDR_COLUMNS):
            continue
        row = dict(zip(CDR_COLUMNS, values, strict=False))
        if row["dcontext"] != context or row["dst"] not in extensions:
            continue
        start, end = at(row["start"]), at(row["end"])
        if since is not None and (start is None or start < since):
            continue
        call = facts.setdefault(row["uniqueid"], LoggedCall(row["uniqueid"]))
        call.linkedid = row["linkedid"] or call.linkedid
        call.channel = call.channel or row["channel"]
        if row["disposition"] == "ANSWERED" and row["dstchannel"]:
            call.operator_interface = call.operator_interface or interface_of(row["dstchannel"])
        call.caller = row["src"] or call.caller
        if start and (call.started_at is None or start < call.started_at):
            call.started_at = start
        if end and (call.ended_at is None or end > call.ended_at):
            call.ended_at = end


def interface_of(channel: str) -> str:
    """The queue member interface of an operator's channel.

    >>> interface_of("PJSIP/op2-00000003"), interface_of("Local/op1@operators-00000003;1")
    ('PJSIP/op2', 'Local/op1@operators/n')
    """
    if channel.startswith("Local/"):
        return channel.rsplit("-", 1)[0] + "/n"
    return channel.rsplit("-", 1)[0]


def read_cel_lines(
    lines: Iterable[str],
    facts: dict[str, LoggedCall],
    *,
    since: datetime | None,
    context: str,
    extensions: frozenset[str],
    tz: ZoneInfo,
) -> None:
    """CEL of the 112 caller channels (CHAN_START in the inbound context and extension): start,
    answer (the caller entering the queue's bridge with an operator), hangup cause and end,
    to the microsecond, and the operator's channel."""
    callers: set[str] = set()
    for line in lines:
        try:
            row = json.loads(line)
            when = datetime.fromisoformat(row["eventtime"]).replace(tzinfo=tz).astimezone(UTC)
            kind, uniqueid = row["eventtype"], row["uniqueid"]
        except (ValueError, KeyError, TypeError):
            continue
        started = kind == "CHAN_START" and (since is None or when >= since)
        if started and _is_caller(row, context, extensions):
            callers.add(uniqueid)
        if uniqueid not in callers:
            continue
        call = facts.setdefault(uniqueid, LoggedCall(uniqueid))
        call.linkedid = row.get("linkedid") or call.linkedid
        call.channel = call.channel or row.get("channame")
        call.last_seen = max(filter(None, (call.last_seen, when)))
        if kind == "CHAN_START":
            call.started_at = when
        elif kind == "BRIDGE_ENTER" and row.get("appname") == "Queue" and row.get("peer"):
            call.answered_at = call.answered_at if call.cel_answer else when
            call.cel_answer = True
            call.operator_interface = interface_of(row["peer"])
        elif kind == "HANGUP":
            call.hangup_cause = _cause(row.get("eventextra"))
            call.ended_at = when
        elif kind == "CHAN_END":
            call.ended_at = when


def _is_caller(row: dict[str, str], context: str, extensions: frozenset[str]) -> bool:
    """A channel started in the inbound context and extension, but not the ``;1`` half of a
    Local channel (that one dials the ``;2`` half, which is the caller, as in the tracker)."""
    name = row.get("channame") or ""
    local_dialer = name.startswith("Local/") and name.endswith(";1")
    return row.get("context") == context and row.get("exten") in extensions and not local_dialer


def _cause(extra: str | None) -> int | None:
    try:
        value = json.loads(extra or "{}").get("hangupcause")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def read_logs(
    *,
    queue_log: Path | None,
    cdr: Path | None,
    since: datetime | None,
    context: str,
    extensions: Iterable[str],
    tz: ZoneInfo,
    cel: Path | None = None,
) -> dict[str, LoggedCall]:
    facts: dict[str, LoggedCall] = {}
    if cdr is not None:
        with cdr.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
            read_cdr_rows(
                csv.reader(handle),
                facts,
                since=since,
                context=context,
                extensions=frozenset(extensions),
                tz=tz,
            )
    if queue_log is not None:
        with queue_log.open(encoding="utf-8", errors="replace") as handle:
            read_queue_log_lines(handle, facts, since=since)
    if cel is not None:  # last: its times (microseconds) replace the whole seconds above
        with cel.open(encoding="utf-8", errors="replace") as handle:
            read_cel_lines(
                handle,
                facts,
                since=since,
                context=context,
                extensions=frozenset(extensions),
                tz=tz,
            )
    return facts


def complete(state: CallState | None, logged: LoggedCall) -> CallState | None:
    """The call with the gaps filled from the logs (the listener's own facts are kept)."""
    started = logged.started_at or logged.queued_at
    if state is None:
        if started is None:
            return None  # a queue_log fragment of a call older than the window
        state = CallState(
            uniqueid=logged.uniqueid,
            linkedid=logged.linkedid or logged.uniqueid,
            channel=logged.channel or "",
            started_at=started,
            last_event_at=logged.last_seen or started,
            caller_id_raw=logged.caller or "<unknown>",
            gap=True,  # never seen live
        )
    if state.queued_at is None and logged.queued_at is not None:
        state.queued_at, state.queue = logged.queued_at, logged.queue
        state.queue_position = state.queue_position or logged.position
    if state.answered_at is None and logged.answered_at is not None:
        state.answered_at = logged.answered_at
    if state.operator is None and logged.operator and logged.operator != "NONE":
        state.operator = logged.operator
    if state.operator_interface is None and state.answered_at is not None:
        state.operator_interface = logged.operator_interface
    if state.wait_seconds is None:
        state.wait_seconds = logged.wait_seconds
    if state.talk_seconds is None and logged.talk_seconds is not None:
        state.talk_seconds = logged.talk_seconds
        state.complete_reason = logged.complete_reason
    if logged.abandoned:
        state.abandoned = True
    if logged.timed_out and state.queue_status is None:
        state.queue_status = "TIMEOUT"
    if state.ended_at is None and logged.ended_at is not None:
        state.ended_at = logged.ended_at
    if state.hangup_cause is None and logged.hangup_cause is not None:
        state.hangup_cause = logged.hangup_cause
    return state
