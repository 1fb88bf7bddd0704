"""pyst2's defects (shared/PYST2.md), each replayed with the recorded frames that trigger it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from asterisk.manager import Manager, ManagerException

from callcenter.ami.client import ActionTimeout, AmiSession, AuthenticationFailed
from callcenter.ami.fake_server import Chunk, FakeAsterisk, Recording, coalesce
from callcenter.ami.frames import Frame, FrameParser, read_frame
from tests.ami.helpers import make_listener, wait_for
from tests.conftest import TRACES

ACTIONS = TRACES / "12-ami-actions"
LATIN1 = TRACES / "10-callerid-edge-cases"
ANSWERED = TRACES / "01-answered"


def recorded_events(folder: Path) -> list[Frame]:
    parser = FrameParser()
    parser.push((folder / "ami.raw").read_bytes())
    parser.take_line()
    return [f for f in parser.frames() if f.is_event]


class Collector:
    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.lost = threading.Event()

    def __call__(self, frame: Frame) -> None:
        self.frames.append(frame)


def logged_in(fake: FakeAsterisk, collector: Collector, timeout: float = 2.0) -> AmiSession:
    session = AmiSession(collector, action_timeout=timeout, on_lost=lambda _r: collector.lost.set())
    session.connect("127.0.0.1", fake.port)
    session.login("backend112", "ttu112secret")
    return session


def test_every_action_gets_a_fresh_dict_and_its_own_action_id() -> None:
    defaults_before = Manager.send_action.__defaults__
    with FakeAsterisk([[]], close_at_end=False) as fake:
        session = logged_in(fake, Collector())
        session.send_action(Action="QueueStatus", Queue="emergency-112")
        pong = session.ping()  # pyst2's own ping(): it builds {'Action': 'Ping'}
        session.close()

    ping = next(dict(a) for a in fake.received if ("Action", "Ping") in a)
    status = next(dict(a) for a in fake.received if ("Action", "QueueStatus") in a)
    assert "Queue" not in ping  # pyst2 sent a stale Queue header here
    assert ping["ActionID"] != status["ActionID"]  # ... and the same ActionID again
    assert pong.get_header("Ping") == "Pong"
    assert Manager.send_action.__defaults__ == defaults_before


def test_a_reply_that_never_comes_raises_within_the_deadline() -> None:
    with FakeAsterisk([[]], close_at_end=False, answer_pings=False) as fake:
        session = logged_in(fake, Collector(), timeout=0.2)
        with pytest.raises(ActionTimeout):
            session.ping()  # pyst2 blocks forever here
        session.close()


def test_replies_are_matched_by_action_id_amid_other_replies() -> None:
    # The recorded stream carries replies to the capture's own actions (ping-1, csc-1, ...).
    frames = Recording.load(ACTIONS).frames
    with FakeAsterisk([frames], close_at_end=False) as fake:
        session = logged_in(fake, Collector())
        replies = [session.ping() for _ in range(20)]
        session.close()
    sent = [dict(a)["ActionID"] for a in fake.received if ("Action", "Ping") in a]
    assert [r.get_header("ActionID") for r in replies] == sent


def test_on_blocks_hands_on_events_unparsed_in_order_and_still_matches_replies() -> None:
    # The listener's path: events go on as bytes, parsed on the consumer's thread. Replies to
    # the capture's own actions, some behind binary debris, must be kept out of the events.
    chunks: list[Chunk] = []
    for chunk in Recording.load(ACTIONS).frames:
        if chunk.data.startswith(b"Response: "):
            chunk = Chunk(b"\x01\x02" + chunk.data)
        chunks.append(chunk)
    expected = recorded_events(ACTIONS)
    blocks: list[bytes] = []
    with FakeAsterisk([coalesce(chunks, 4096)], close_at_end=False) as fake:
        session = AmiSession(on_blocks=blocks.extend)
        session.connect("127.0.0.1", fake.port)
        session.login("backend112", "ttu112secret")
        pongs = [session.ping() for _ in range(5)]
        wait_for(lambda: len(blocks) >= len(expected), "every event handed on")
        session.close()

    assert all(isinstance(block, bytes) for block in blocks)
    events = [read_frame(block) for block in blocks]
    assert [(frame.headers, junk) for frame, junk in events if frame] == [
        (frame.headers, False) for frame in expected
    ]
    assert [pong.get_header("Ping") for pong in pongs] == ["Pong"] * 5


def test_status_and_queuestatus_lists_swallow_no_event() -> None:
    # pyst2 glues everything after "status will follow" into one reply: 270 events became 176.
    want = recorded_events(ACTIONS)
    collector = Collector()
    with FakeAsterisk([coalesce(Recording.load(ACTIONS).frames, 1500)]) as fake:
        session = logged_in(fake, collector)
        wait_for(collector.lost.is_set, "the end of the stream")
        session.close()
    assert [f.headers for f in collector.frames] == [f.headers for f in want]
    names = {f.name for f in collector.frames}
    assert {"Status", "StatusComplete", "QueueParams", "QueueMember"} <= names
    assert {"QueueStatusComplete", "CoreShowChannel", "Newexten"} <= names


def test_chanvariable_headers_do_not_stop_events() -> None:
    # pyst2 calls dict.has_key on ChanVariable and its message thread dies.
    chunks = [
        Chunk(
            c.data.replace(
                b"\r\n\r\n", b"\r\nChanVariable: SIM_LABEL=a\r\nChanVariable: B=1\r\n\r\n"
            )
        )
        for c in Recording.load(ANSWERED).frames
    ]
    collector = Collector()
    with FakeAsterisk([chunks]) as fake:
        session = logged_in(fake, collector)
        wait_for(collector.lost.is_set, "the end of the stream")
        session.close()
    assert len(collector.frames) == len(recorded_events(ANSWERED))
    assert all(f.get_all("ChanVariable") == ["SIM_LABEL=a", "B=1"] for f in collector.frames)


def test_invalid_utf8_is_kept() -> None:
    collector = Collector()
    with FakeAsterisk([coalesce(Recording.load(LATIN1).frames)]) as fake:
        session = logged_in(fake, collector)
        wait_for(collector.lost.is_set, "the end of the stream")
        session.close()
    names = {f.get("CallerIDName") for f in collector.frames}
    assert "José Amáral" in names  # pyst2 gives "Jos Amral"


def test_a_raising_callback_does_not_stop_dispatch(caplog: pytest.LogCaptureFixture) -> None:
    delivered: list[Frame] = []
    lost = threading.Event()

    def flaky(frame: Frame) -> None:
        delivered.append(frame)
        if len(delivered) % 10 == 0:
            raise RuntimeError("a bug in a handler")

    with FakeAsterisk([coalesce(Recording.load(ANSWERED).frames)]) as fake:
        session = AmiSession(flaky, on_lost=lambda _r: lost.set())
        session.connect("127.0.0.1", fake.port)
        session.login("backend112", "ttu112secret")
        wait_for(lost.is_set, "the end of the stream")
        session.close()
    assert len(delivered) == len(recorded_events(ANSWERED))
    assert "a bug in a handler" in caplog.text


def test_a_session_connects_once_a_new_one_reconnects() -> None:
    with FakeAsterisk([[], []], close_at_end=False) as fake:
        first = logged_in(fake, Collector())
        first.close()
        with pytest.raises(ManagerException):
            first.connect("127.0.0.1", fake.port)
        second = logged_in(fake, Collector())
        assert second.ping().get_header("Response") == "Success"
        second.close()


def test_wrong_secret_is_a_clear_error() -> None:
    with FakeAsterisk([[]]) as fake:
        session = AmiSession(Collector())
        session.connect("127.0.0.1", fake.port)
        with pytest.raises(AuthenticationFailed, match="Authentication failed"):
            session.login("backend112", "wrong")
        session.close()


def test_listener_reports_wrong_credentials_and_keeps_retrying(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeAsterisk([[]], secret="the-real-one") as fake:
        listener, store = make_listener(database_url, fake.port, tmp_path / "spool")
        listener.start()
        wait_for(lambda: fake.connections >= 2, "a second attempt")
        assert "authentication failed" in listener.readiness()
        listener.stop()
        store.engine.dispose()
    assert "ttu112secret" not in caplog.text  # never the secret in logs


def test_listener_reports_an_unreachable_asterisk(database_url: str, tmp_path: Path) -> None:
    with FakeAsterisk([[]]) as fake:
        port = fake.port
    listener, store = make_listener(database_url, port, tmp_path / "spool")
    listener.start()
    wait_for(lambda: "cannot reach" in listener.readiness(), "the failure reported")
    listener.stop()
    store.engine.dispose()


def test_listener_reconnects_when_pings_go_unanswered(database_url: str, tmp_path: Path) -> None:
    with FakeAsterisk([[], [], []], close_at_end=False, answer_pings=False) as fake:
        listener, store = make_listener(
            database_url,
            fake.port,
            tmp_path / "spool",
            settings={"ping_interval_seconds": 0.05, "ping_timeout_seconds": 0.1},
        )
        listener.start()
        wait_for(lambda: fake.connections >= 2, "a new session after a silent Asterisk")
        listener.stop()
        store.engine.dispose()
    assert listener.counters.connections >= 2
