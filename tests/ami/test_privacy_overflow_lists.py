"""Recorded calls through the real listener: a withheld caller, an overflow, no "<unknown>"
name, and the state rebuilt from Asterisk's lists after a listener restart (lists.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.ami.call_state import CallState
from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from tests.ami.helpers import exported, make_listener, replay, wait_for
from tests.conftest import TRACES

WITHHELD = TRACES / "24-pjsip-operator-hangup-withheld"
TIMEOUT = TRACES / "04-queue-timeout"
ABANDONED = TRACES / "02-abandoned"  # rung for 19 s, nobody answers


def frames(folder: Path) -> list[Chunk]:
    return Recording.load(folder, stamp=True).frames


def with_presentation_variable(chunks: list[Chunk], value: str) -> list[Chunk]:
    """The stream as the shipped dialplan makes it: our IVR (and the dialplan's
    ``Set(CALLER_PRES=${CALLERID(pres)})``) set CALLER_PRES on the caller's channel, which
    Asterisk reports as a VarSet like the recorded AGISTATUS one."""
    out = []
    for chunk in chunks:
        out.append(chunk)
        if b"Variable: AGISTATUS\r\n" in chunk.data:
            data = chunk.data.replace(b"Variable: AGISTATUS", b"Variable: CALLER_PRES")
            out.append(Chunk(data.replace(b"Value: FAILURE", f"Value: {value}".encode()), chunk.at))
    return out


def test_a_withheld_caller_keeps_the_number_and_is_marked_private(
    database_url: str, tmp_path: Path
) -> None:
    """PJSIP, ``Privacy: id`` on a trusted trunk: Newchannel has the asserted number and no
    AMI event carries the presentation; the IVR's CALLER_PRES (agi_callingpres 32) does."""
    replay(database_url, [coalesce(with_presentation_variable(frames(WITHHELD), "32"))], tmp_path)

    [row] = exported(database_url).values()
    assert row["caller_id_raw"] == "038821234"  # kept: a 112 line calls back
    assert row["caller_e164"] == "+6238821234"
    assert row["caller_id_private"] is True
    assert row["caller_id_name"] is None  # AMI's "<unknown>", stored as no name


def test_the_dialplan_presentation_name_also_marks_it_private(
    database_url: str, tmp_path: Path
) -> None:
    """``CALLERID(pres)`` in the dialplan gives a name, not a number."""
    replay(
        database_url,
        [coalesce(with_presentation_variable(frames(WITHHELD), "prohib_not_screened"))],
        tmp_path,
    )
    [row] = exported(database_url).values()
    assert row["caller_id_private"] is True


def test_an_ordinary_caller_is_not_private_and_has_no_fake_name(
    database_url: str, tmp_path: Path
) -> None:
    replay(database_url, [coalesce(frames(WITHHELD))], tmp_path)
    [row] = exported(database_url).values()
    assert row["caller_id_private"] is False
    assert row["caller_id_name"] is None


def test_an_overflow_is_counted_once_per_queue_round(database_url: str, tmp_path: Path) -> None:
    """Trace 04: the queue times out, the dialplan sends Emergency112Overflow. The same
    event delivered twice is one overflow."""
    recorded = frames(TIMEOUT)
    twice = []
    for chunk in recorded:
        twice.append(chunk)
        if b"UserEvent: Emergency112Overflow" in chunk.data:
            twice.append(chunk)
    replay(database_url, [coalesce(twice)], tmp_path)

    [row] = exported(database_url).values()
    assert row["outcome"] == "unanswered"
    assert row["overflows"] == 1


def split_at(chunks: list[Chunk], marker: bytes) -> tuple[list[Chunk], list[Chunk]]:
    index = next(i for i, c in enumerate(chunks) if marker in c.data)
    return chunks[:index], chunks[index:]


def test_after_a_restart_a_call_queued_meanwhile_is_queued(
    database_url: str, tmp_path: Path
) -> None:
    """The listener stops while the caller is in the IVR; Asterisk queues the caller while
    nobody listens. The restarted listener resumes the call from the database and must tell
    the live stream it is queued (from QueueStatus and CoreShowChannels), not in_ivr."""
    recorded = frames(ABANDONED)
    before, rest = split_at(recorded, b"Event: QueueCallerJoin")
    missed, after = split_at(rest, b"Event: QueueCallerAbandon")

    with FakeAsterisk([before]) as first:
        listener, store = make_listener(database_url, first.port, tmp_path / "a", stop_at_eof=True)
        listener.start()
        assert first.finished.wait(30)
        assert listener.wait(30)
        store.engine.dispose()
    [row] = exported(database_url).values()
    assert row["outcome"] == "in_ivr"

    published: list[CallState] = []
    reconnected = datetime.now(UTC)
    with FakeAsterisk([[]], history=before + missed, close_at_end=False) as second:
        listener, store = make_listener(
            database_url, second.port, tmp_path / "b", publish=published.extend
        )
        listener.start()
        wait_for(lambda: any(s.outcome == "queued" for s in published), "the call pushed as queued")
        listener.stop()
        store.engine.dispose()
    assert [s.outcome for s in published] == ["queued"]
    [row] = exported(database_url).values()
    assert row["outcome"] == "queued"
    assert row["queue"] == "emergency-112"
    # QueueEntry's Wait dates the join before the list's arrival (the list items carry no
    # Timestamp: they are read at arrival), not at the reconnect.
    join = next(c for c in missed if b"Event: QueueCallerJoin" in c.data)
    last = next(c for c in reversed(missed) if b"Timestamp: " in c.data)
    waited = int(float(_header(last.data, b"Timestamp")) - float(_header(join.data, b"Timestamp")))
    assert waited > 0
    queued_at = datetime.fromisoformat(row["queued_at"])
    assert reconnected - timedelta(seconds=waited + 1) <= queued_at
    assert queued_at <= datetime.now(UTC) - timedelta(seconds=waited)

    # The rest of the call, live again: it ends as Asterisk says.
    with FakeAsterisk([after]) as third:
        listener, store = make_listener(database_url, third.port, tmp_path / "c", stop_at_eof=True)
        listener.start()
        assert third.finished.wait(30)
        assert listener.wait(30)
        store.engine.dispose()
    [row] = exported(database_url).values()
    assert (row["outcome"], row["wait_seconds"]) == ("abandoned_in_queue", 19)


def _header(frame: bytes, name: bytes) -> bytes:
    line = next(line for line in frame.split(b"\r\n") if line.startswith(name + b": "))
    return line.split(b": ", 1)[1]
