"""What the listener counts: shown by `callcenter replay`, the benchmarks and the tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Counters:
    frames: int = 0
    stored_events: int = 0
    batches: int = 0
    spooled_batches: int = 0
    connections: int = 0
    gap_closed_calls: int = 0
    junk_frames: int = 0  # frames with debris, or debris alone (logged, skipped)
    tracker_errors: int = 0  # frames the tracker failed on (logged, stored raw, skipped)
    quarantined_rows: int = 0  # rows the database refused even alone (ami_quarantine)
    consumer_restarts: int = 0  # the consumer failed or its thread died, and started again
    spool_errors: int = 0  # writes the spool's disk refused (the batches stayed in memory)
    corrupt_spool_files: int = 0  # spool files that could not be read (moved aside)
