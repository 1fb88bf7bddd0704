"""Property and fuzz tests (hypothesis) of the AMI frame reader, the tracker, the store path and
the AGI reader, from a corpus of the recorded traces: whatever arrives, nothing raises that the
caller does not expect, and nothing is lost.

`make test` runs a bounded number of examples; `make fuzz` runs many more
(HYPOTHESIS_PROFILE=fuzz, see tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from callcenter.ami.batch import Batch
from callcenter.ami.call_state import CallState
from callcenter.ami.frames import FrameParser, read_frame
from callcenter.ami.identity import EventKeys
from callcenter.ami.isolate import write_isolating
from callcenter.ami.models import QuarantinedRow
from callcenter.ami.store import CallStore
from callcenter.ami.tracker import CallTracker
from callcenter.db import make_engine, make_sessionmaker
from callcenter.ivr.agi import SafeAGI, text_streams
from callcenter.ivr.session import AgiProtocolError, CallerHungUp
from callcenter.models import Call, Outcome
from tests.conftest import TRACES

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
# `make fuzz` multiplies every bound (CALLCENTER_FUZZ_SCALE=100: about 100,000 examples).
SCALE = int(os.environ.get("CALLCENTER_FUZZ_SCALE", "1"))


@cache
def corpus() -> tuple[bytes, ...]:
    """Every frame of every recorded trace, as Asterisk sent it (without the blank line)."""
    blocks: list[bytes] = []
    for raw in sorted(TRACES.glob("*/ami.raw")):
        data = raw.read_bytes()
        data = data[data.find(b"\r\n") + 2 :]  # the greeting line
        blocks += [b for b in data.split(b"\r\n\r\n") if b.strip()]
    return tuple(blocks)


frames_of_the_corpus = st.integers(min_value=0).map(lambda i: corpus()[i % len(corpus())])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus frame with bytes changed, inserted or cut, or a header value made odd."""
    block = draw(frames_of_the_corpus)
    how = draw(st.sampled_from(["bytes", "insert", "cut", "value"]))
    if how == "value":
        odd = draw(
            st.sampled_from(
                [
                    b"99999999999999999999",
                    b"10000000000000000000",
                    b"3000000000",
                    b"-1",
                    b"1e18",
                    b"x" * 300,
                    b"\x00\xff\xfe",
                    b"",
                ]
            )
        )
        return re.sub(rb"(?<=: )[^\r\n]*", lambda _: odd, block, count=draw(st.integers(1, 5)))
    at = draw(st.integers(0, len(block)))
    junk = draw(st.binary(max_size=40))
    if how == "insert":
        return block[:at] + junk + block[at:]
    if how == "cut":
        return block[:at]
    return block[:at] + junk + block[at + len(junk) :]


@settings(max_examples=300 * SCALE)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_any_bytes_in_any_reads_never_raise(data: bytes, cuts: list[int]) -> None:
    parser = FrameParser()
    edges = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    for start, end in itertools.pairwise(edges):
        for frame in parser.feed(data[start:end]):
            assert frame.name is not None
            assert frame.dedup_key


@settings(max_examples=200 * SCALE)
@given(
    picks=st.lists(frames_of_the_corpus, min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 60000), max_size=10),
)
def test_corpus_frames_survive_any_split_into_reads(picks: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(block + b"\r\n\r\n" for block in picks)
    whole = [(f.headers, f.text) for f in FrameParser().feed(stream)]
    parser = FrameParser()
    pieces = []
    edges = sorted({0, len(stream), *(c for c in cuts if c <= len(stream))})
    for start, end in itertools.pairwise(edges):
        pieces += [(f.headers, f.text) for f in parser.feed(stream[start:end])]
    assert pieces == whole
    assert len(whole) == len(picks)


@settings(max_examples=300 * SCALE)
@given(block=mutated())
def test_a_mutated_frame_is_read_or_reported_never_raises(block: bytes) -> None:
    frame, _junk = read_frame(block)
    if frame is not None:
        assert frame.headers is not None
        assert len(frame.dedup_key) <= 64


def _tracker() -> CallTracker:
    return CallTracker(inbound_context="from-pstn", inbound_extensions=["112"])


@settings(max_examples=150 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=st.lists(st.one_of(frames_of_the_corpus, mutated()), min_size=1, max_size=80))
def test_the_tracker_takes_any_frames_and_its_states_round_trip(blocks: list[bytes]) -> None:
    tracker = _tracker()
    for block in blocks:
        frame, _junk = read_frame(block)
        if frame is None:
            continue
        tracked = tracker.feed(frame, NOW)
        if tracked.changed is not None:
            state = tracked.changed
            assert state.outcome in set(Outcome)
            again = CallState.from_snapshot(state.snapshot())
            assert again.snapshot() == state.snapshot()


def _trace_frames(name: str) -> list[bytes]:
    data = (TRACES / name / "ami.raw").read_bytes()
    data = data[data.find(b"\r\n") + 2 :]
    return [b for b in data.split(b"\r\n\r\n") if b.strip()]


@settings(max_examples=60 * SCALE, suppress_health_check=[HealthCheck.too_slow])
@given(repeats=st.lists(st.integers(0, 10_000), max_size=20))
def test_a_frame_delivered_twice_changes_no_outcome(repeats: list[int]) -> None:
    """The facts-based tracker: a duplicated event (a replayed stretch of the stream) leaves
    every call's outcome and times as they were."""
    blocks = _trace_frames("13-combined-concurrent")
    doubled = list(blocks)
    for index in sorted({r % len(blocks) for r in repeats}, reverse=True):
        doubled.insert(index + 1, blocks[index])

    def outcomes(stream: list[bytes]) -> dict[str, tuple[object, ...]]:
        tracker = _tracker()
        for block in stream:
            frame, _junk = read_frame(block)
            if frame is not None:
                tracker.feed(frame, NOW)
        states = {**tracker.finished, **tracker.calls}
        return {u: (s.outcome, s.answered_at, s.ended_at) for u, s in states.items()}

    assert outcomes(doubled) == outcomes(blocks)


@pytest.mark.parametrize("odd", ["value", "uniqueid"])
@settings(
    max_examples=15 * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(blocks=st.lists(mutated(), min_size=1, max_size=40), seed=st.integers(0, 10**9))
def test_the_store_path_loses_no_call(
    database_url: str, odd: str, blocks: list[bytes], seed: int
) -> None:
    """Trace 01 with mutated frames mixed in, through tracker, store and isolation: every call
    the tracker made is a row of calls or of ami_quarantine, whatever its values."""
    stream = [*_trace_frames("01-answered"), *blocks]
    suffix = f"{seed}"
    if odd == "uniqueid":
        stream = [re.sub(rb"1795828474\.13", b"9" * 160 + suffix.encode(), b) for b in stream]
    else:
        stream = [re.sub(rb"1795828474\.13", f"1.{suffix}".encode(), b) for b in stream]
    tracker, keys, batch = _tracker(), EventKeys(), Batch()
    for block in stream:
        frame, _junk = read_frame(block)
        if frame is not None:
            batch.add_tracked(frame, tracker.feed(frame, NOW), NOW, keys)
    assume(batch.calls)
    engine = make_engine(database_url)
    store = CallStore(make_sessionmaker(engine), pbx=f"prop-{odd}")
    try:
        write_isolating(store, batch)
        with make_sessionmaker(engine)() as session:
            stored = set(session.scalars(select(Call.uniqueid).where(Call.pbx == store.pbx)))
            held = set(
                session.scalars(
                    select(QuarantinedRow.uniqueid).where(QuarantinedRow.pbx == store.pbx)
                )
            )
            assert session.scalar(select(func.count()).select_from(Call)) is not None
    finally:
        engine.dispose()
    for uniqueid in batch.calls:
        assert uniqueid in stored or uniqueid in held, uniqueid


@cache
def agi_environment() -> bytes:
    """The agi_* block of a recorded process-AGI session, then the blank line."""
    lines = []
    for line in (TRACES / "01-answered" / "agi-process.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == "RX":
            if not parts[2].startswith("agi_"):
                break
            lines.append(parts[2])
    return ("\n".join(lines) + "\n\n").encode()


@settings(max_examples=300 * SCALE)
@given(
    reply=st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"200 result=1\n", b"HANGUP\n200 result=0\n", b"520-Invalid\n520 End\n"]),
        st.builds(
            lambda code, text: f"{code} {text}\n".encode(),
            st.integers(0, 99999),
            st.text(max_size=60),
        ),
    )
)
def test_the_agi_reader_returns_a_reply_or_says_why_not(reply: bytes) -> None:
    reader, writer = text_streams(io.BytesIO(agi_environment() + reply), io.BytesIO())
    agi = SafeAGI(reader, writer)
    assert agi.env["agi_uniqueid"]
    with contextlib.suppress(AgiProtocolError, CallerHungUp):
        agi.read_reply()
