"""`callcenter serve` on a fresh database seeds what `callcenter migrate` seeds (issue 12)."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.db import make_engine, make_sessionmaker
from callcenter.incidents.models import Agency
from callcenter.settings import Settings
from tests.test_serve_workers import CALLCENTER, _environ, _free_port


def test_a_fresh_serve_has_the_configured_agencies(tmp_path: Path) -> None:
    """A new user's `make run` had no agencies until `callcenter migrate` ran by hand."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    port = _free_port()
    server = subprocess.Popen(
        [CALLCENTER, "serve", "--port", str(port)],
        env=_environ(url, tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "serve never answered"
                assert server.poll() is None, "serve exited"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(30)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        codes = set(session.scalars(select(Agency.code)))
    engine.dispose()
    assert codes == {agency.code for agency in Settings().agencies}


def test_serve_options_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    assert "address the API listens on" in text
    assert "port the API listens on" in text
