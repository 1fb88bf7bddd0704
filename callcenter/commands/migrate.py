"""`callcenter migrate`: bring the configured database to the latest schema."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="apply the database migrations (schema to head)"
    )
    parser.add_argument("--check", action="store_true", help="only say whether it is at head")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `callcenter --help` and a wrong configuration need neither.
    from callcenter.db import make_engine, migrate
    from callcenter.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        if args.check:
            at_head = migrate.is_at_head(engine)
            print("at head" if at_head else "not at head")  # noqa: T201
            return 0 if at_head else 1
        added = migrate.upgrade_and_seed(engine, settings)
        if added:
            print(f"agencies added: {', '.join(added)}")  # noqa: T201
        print(f"database at {', '.join(sorted(migrate.current_revisions(engine)))}")  # noqa: T201
        return 0
    finally:
        engine.dispose()
