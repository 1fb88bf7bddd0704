"""The frame parser on real wire bytes: split reads, junk, repeated keys, big frames, Latin-1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.frames import Frame, FrameParser, decode_value, parse_frame, read_frame
from tests.conftest import TRACES

ANSWERED = TRACES / "01-answered"


def recorded_event_frames(folder: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (folder / "ami.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("dir") == "rx" and r.get("type") != "greeting"]


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
def test_any_read_size_gives_the_recorded_frames(size: int) -> None:
    raw = (ANSWERED / "ami.raw").read_bytes()
    parser = FrameParser()
    parser.push(raw[:0])
    frames: list[Frame] = []
    greeting = None
    for offset in range(0, len(raw), size):
        parser.push(raw[offset : offset + size])
        if greeting is None:
            greeting = parser.take_line()
            if greeting is None:
                continue
        frames.extend(parser.frames())
    want = recorded_event_frames(ANSWERED)
    assert greeting == b"Asterisk Call Manager/11.0.0"
    assert [f.headers for f in frames] == [[(k, v) for k, v in r["headers"]] for r in want]
    assert parser.junk_frames == 0


def test_garbage_between_frames_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    stream = (
        b"Event: Ping1\r\nA: 1\r\n\r\n"
        b"\x00\xff\xfe\x80 binary junk\r\n\r\n"
        b"just some words\r\n\r\n"
        b"\x00\x01Event: Glued\r\nB: 2\r\n\r\n"
        b"noise line\r\nEvent: AfterNoise\r\nC: 3\r\n\r\n"
    )
    frames = FrameParser().feed(stream)
    assert [f.name for f in frames] == ["Ping1", "Glued", "AfterNoise"]
    assert frames[1]["B"] == "2"
    assert frames[2]["C"] == "3"
    assert "skipped garbage" in caplog.text


def test_repeated_keys_and_chanvariable_kept_in_order() -> None:
    frame = parse_frame(
        b"Event: Newexten\r\nUniqueid: 1.2\r\nChanVariable: SIM_LABEL=answered\r\n"
        b"ChanVariable: IVR_CHOICE=1\r\nUniqueid: 9.9\r\n"
    )
    assert frame.get_all("ChanVariable") == ["SIM_LABEL=answered", "IVR_CHOICE=1"]
    assert frame["Uniqueid"] == "1.2"
    assert frame.get_all("Uniqueid") == ["1.2", "9.9"]


def test_userevent_from_trace_keeps_both_uniqueids() -> None:
    parser = FrameParser()
    parser.push((TRACES / "04-queue-timeout" / "ami.raw").read_bytes())
    parser.take_line()
    user_events = [f for f in parser.frames() if f.name == "UserEvent"]
    assert user_events
    assert len(user_events[0].get_all("Uniqueid")) == 2


def test_a_64_kib_frame_in_small_reads() -> None:
    value = "x" * (64 * 1024)
    data = f"Event: UserEvent\r\nBig: {value}\r\n\r\nEvent: Next\r\n\r\n".encode()
    parser = FrameParser()
    frames: list[Frame] = []
    for offset in range(0, len(data), 1000):
        frames.extend(parser.feed(data[offset : offset + 1000]))
    assert [f.name for f in frames] == ["UserEvent", "Next"]
    assert frames[0]["Big"] == value


def test_latin1_caller_name_from_trace_is_kept_losslessly() -> None:
    parser = FrameParser()
    parser.push((TRACES / "10-callerid-edge-cases" / "ami.raw").read_bytes())
    parser.take_line()
    names = {f.get("CallerIDName") for f in parser.frames() if f.name == "NewCallerid"}
    assert "José Amáral" in names
    assert "José Amáral".encode("latin-1") == b"Jos\xe9 Am\xe1ral"
    assert "José Martins da Costa 📞" in names


def test_a_value_with_no_space_and_empty_values() -> None:
    frame = parse_frame(b"Event: Newchannel\r\nAccountCode: \r\nLanguage:en\r\nExten:\r\n")
    assert frame.headers == [
        ("Event", "Newchannel"),
        ("AccountCode", ""),
        ("Language", "en"),
        ("Exten", ""),
    ]


def test_an_event_looked_up_in_place_reads_as_the_full_parse_does() -> None:
    # Every event of every trace: each key, a missing one, and a key that is a prefix of others.
    checked = 0
    for folder in sorted(p for p in TRACES.iterdir() if (p / "ami.raw").exists()):
        parser = FrameParser()
        parser.push((folder / "ami.raw").read_bytes())
        parser.take_line()
        for block in parser.blocks():
            if not block.startswith(b"Event: "):
                continue
            lazy, junk = read_frame(block)
            full = parse_frame(block)
            assert lazy is not None
            assert not junk
            for key in [k for k, _ in full.headers] + ["NoSuchHeader", "Caller", "Uniqu"]:
                assert lazy.get(key) == full.get(key), (folder.name, key)
            assert lazy.name == full.name
            # The text is the bytes as read (a Latin-1 line as Latin-1), so it can be stored.
            assert lazy.text == "\r\n".join(decode_value(line) for line in block.split(b"\r\n"))
            assert lazy.headers == full.headers
            checked += 1
    assert checked > 1000


def test_an_event_with_a_stray_line_keeps_it_in_its_text_and_lookups_skip_it() -> None:
    block = b"Event: Hangup\r\nnot a header\r\nUniqueid: 1.2\r\nCause:16\r\nEmpty:"
    frame, junk = read_frame(block)
    assert frame is not None
    assert not junk
    assert (frame["Uniqueid"], frame["Cause"], frame.get("Empty")) == ("1.2", "16", "")
    assert frame.get("not a header") is None
    assert frame.text == block.decode()
    assert frame.headers == [
        ("Event", "Hangup"),
        ("Uniqueid", "1.2"),
        ("Cause", "16"),
        ("Empty", ""),
    ]
    with pytest.raises(KeyError):
        frame["Channel"]


def test_the_listener_s_questions_leave_an_event_unsplit() -> None:
    frame, _ = read_frame(b"Event: Hangup\r\nUniqueid: 1.2\r\nActionID: 7\r\nCause: 16")
    assert frame is not None
    assert (frame.is_event, frame.is_response, frame.action_id, frame.name) == (
        True,
        False,
        "7",
        "Hangup",
    )
    assert frame.get("Uniqueid") == "1.2"
    assert frame._headers is None  # looked up in the text, never split into headers
