"""`callcenter stats-refresh`: bring the statistics rollups up to date (or rebuild them).

Each statistics request refreshes the rollups itself; run this after loading calls in bulk or
after a deploy on a large history, so that no request pays for building them, or from cron.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import delete

from callcenter.db import make_engine, make_sessionmaker, transaction
from callcenter.settings import get_settings
from callcenter.stats import rollup
from callcenter.stats.models import RollupState


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "stats-refresh", help="bring the statistics rollups up to date"
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild every day from the calls table"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        started = time.perf_counter()
        with transaction(make_sessionmaker(engine)) as session:
            if args.rebuild:
                session.execute(delete(RollupState))
            days = rollup.refresh(
                session,
                timezone=settings.timezone,
                safety=timedelta(seconds=settings.stats.refresh_safety_seconds),
            )
        elapsed = time.perf_counter() - started
        print(f"rollups: {days} day(s) rebuilt in {elapsed:.1f} s")  # noqa: T201
        return 0
    finally:
        engine.dispose()
