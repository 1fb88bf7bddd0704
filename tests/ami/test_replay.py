"""Every recorded trace, through the real listener over a real socket, against expected.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ami.helpers import TRACE_FOLDERS, assert_matches_expected, recording_plan, replay


@pytest.mark.parametrize("folder", TRACE_FOLDERS, ids=lambda p: p.name)
def test_trace_replayed_matches_expected(database_url: str, folder: Path, tmp_path: Path) -> None:
    listener, _ = replay(database_url, recording_plan(folder), tmp_path / "spool")

    assert_matches_expected(database_url, folder)
    assert listener.counters.spooled_batches == 0
    assert listener.counters.stored_events > 0
    assert listener.readiness() != "ok"  # the stream ended: not connected any more
