"""Run every benchmark, or those named: `python -m benchmarks [ami ivr classification stats
console contention upgrade]`."""

from __future__ import annotations

import importlib
import sys
import time

PARTS = ("ami", "ivr", "classification", "stats", "console", "contention", "upgrade")


def main(argv: list[str]) -> int:
    for name in argv or PARTS:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        module.main()
        print(f"--- {name} took {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
