"""/readyz's "fastagi" probe: ok while listening; not ok while callers are being skipped."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from callcenter.ivr.server import FastAgiServer
from callcenter.settings import FastAgiSettings, Settings
from tests.ivr.fake_asterisk import Scenario, session
from tests.ivr.test_fastagi_server import converse

FAST = session("05-hangup-in-ivr", "fastagi")


def test_readiness_follows_the_server(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path,
        fastagi=FastAgiSettings(host="127.0.0.1", port=0, max_sessions=1),
    )
    server = FastAgiServer(settings)
    before_bind = server.readiness()
    server.start()
    try:
        listening = server.readiness()
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as held,
            held.makefile("rb") as reader,
        ):
            held.sendall(b"".join(FAST.env))
            assert reader.readline() == b"ANSWER\n"
            skipped = converse(server.port, Scenario(FAST.with_uniqueid("9.9"), fastagi=True))
            busy = server.readiness()
    finally:
        server.stop(grace=0)
    after = server.readiness()

    assert before_bind == "not listening"
    assert listening == "ok"
    assert skipped[0] == 'SET VARIABLE CALLER_FLAG "unchecked"'
    assert busy.startswith("busy: 1 callers queued without the IVR")
    assert after == "not listening"
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), 1):
        raise AssertionError("still accepting after stop()")
