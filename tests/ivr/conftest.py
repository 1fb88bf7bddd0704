"""The IVR tests' fixture: the environment of the IVR processes, on the test's database."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.ivr.harness import ivr_environ


@pytest.fixture
def environ(database_url: str, tmp_path: Path) -> dict[str, str]:
    return ivr_environ(database_url, tmp_path)


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: a database that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
