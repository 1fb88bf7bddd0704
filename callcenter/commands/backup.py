"""`callcenter backup` and `callcenter restore`: the store, copied while it runs, and back.

docs/deploy.md has the schedule (siaga112-backup.timer) and the restore after a dead disk.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from callcenter import backup
from callcenter.errors import CallCenterError
from callcenter.settings import get_settings


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backup", help="back up the database while it runs (SQLite backup API, pg_dump)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dir", type=Path, help="folder for a time-stamped file (default: DATA_DIR/backups)"
    )
    where.add_argument("--output", type=Path, help="exactly this file")
    parser.add_argument(
        "--keep", type=int, default=0, help="then keep only the newest N backups in --dir"
    )
    parser.set_defaults(func=run_backup)

    parser = subparsers.add_parser(
        "restore", help="restore a backup into a fresh database (then migrate it to head)"
    )
    parser.add_argument("file", type=Path, help="a file written by `callcenter backup`")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace what the database holds (stop the services first)",
    )
    parser.set_defaults(func=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    settings = get_settings()
    url = settings.resolved_database_url
    if args.keep < 0:
        raise SystemExit("--keep must be 0 (keep all) or more")
    folder: Path = args.dir or settings.data_dir / "backups"
    target: Path = args.output or folder / backup.backup_name(url)
    try:
        written = backup.backup(url, target)
    except CallCenterError as exc:
        raise SystemExit(f"backup failed: {exc.message}") from None
    print(written)  # noqa: T201
    if args.keep and args.output is None:
        for old in backup.prune(folder, args.keep):
            print(f"removed {old}")  # noqa: T201
    return 0


def run_restore(args: argparse.Namespace) -> int:
    url = get_settings().resolved_database_url
    try:
        backup.restore(url, args.file, force=args.force)
    except CallCenterError as exc:
        raise SystemExit(f"restore refused: {exc.message}") from None
    print(f"restored {args.file}")  # noqa: T201
    return 0
