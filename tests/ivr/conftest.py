"""The IVR tests' fixture: the environment of the IVR processes, on the test's database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ivr.harness import ivr_environ


@pytest.fixture
def environ(database_url: str, tmp_path: Path) -> dict[str, str]:
    return ivr_environ(database_url, tmp_path)
