"""`callcenter user add NAME --role ROLE`: create a user (the first admin, typically);
`user list`; `user reset-password NAME`.

The password is read from stdin when it is not a terminal (``echo ... | callcenter user add``),
otherwise prompted for twice without echo. It never appears on the command line or in logs.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from callcenter.db import make_engine, make_sessionmaker, migrate, transaction
from callcenter.errors import CallCenterError
from callcenter.models import Role
from callcenter.settings import get_settings
from callcenter.users import service


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser("user", help="manage users")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add",
        help="create a user; the password comes from stdin, or a prompt on a terminal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", help="the login name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--display-name", default="")
    add.add_argument(
        "--queue-member-name",
        default=None,
        help="the name AMI reports for this operator's queue member, e.g. 'Operator Andi'",
    )
    add.set_defaults(func=run_add)
    listing = actions.add_parser("list", help="list the users: name, role, active, queue member")
    listing.set_defaults(func=run_list)
    reset = actions.add_parser(
        "reset-password",
        help="set a user's password (stdin, or a prompt on a terminal); clears a login lockout",
    )
    reset.add_argument("name", help="the login name")
    reset.set_defaults(func=run_reset)


class PasswordMismatch(Exception):
    pass


def read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise PasswordMismatch("the two passwords differ")
    return first


def run_add(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        if not migrate.is_at_head(engine):
            sys.stderr.write("the database schema is not at head: run `callcenter migrate`\n")
            return 2
        password = read_password()
        with transaction(make_sessionmaker(engine)) as session:
            user = service.create_user(
                session,
                username=args.name,
                password=password,
                role=Role(args.role),
                display_name=args.display_name,
                queue_member_name=args.queue_member_name,
            )
            sys.stdout.write(f"created {user.role.value} {user.username!r} (id {user.id})\n")
        return 0
    except (CallCenterError, PasswordMismatch) as exc:
        sys.stderr.write(f"callcenter user add: {exc}\n")
        return 1
    finally:
        engine.dispose()


def run_list(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            users = service.list_users(session)
            sys.stdout.write("id\tusername\trole\tactive\tqueue_member_name\tdisplay_name\n")
            for user in users:
                sys.stdout.write(
                    f"{user.id}\t{user.username}\t{user.role.value}\t"
                    f"{'yes' if user.active else 'no'}\t{user.queue_member_name or ''}\t"
                    f"{user.display_name}\n"
                )
        return 0
    finally:
        engine.dispose()


def run_reset(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        password = read_password()
        with transaction(make_sessionmaker(engine)) as session:
            user = service.set_password_by_name(session, username=args.name, password=password)
            sys.stdout.write(f"password of {user.username!r} changed\n")
        return 0
    except (CallCenterError, PasswordMismatch) as exc:
        sys.stderr.write(f"callcenter user reset-password: {exc}\n")
        return 1
    finally:
        engine.dispose()
