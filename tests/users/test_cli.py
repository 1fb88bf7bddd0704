"""`callcenter user add`, run as the real console script in a subprocess."""

import os
import pty
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.models import LoginFailure, Role, User
from callcenter.users.login import username_key
from callcenter.users.security import verify_password
from tests.builders import PRODUCTION_HASH

SCRIPT = str(Path(sys.executable).parent / "callcenter")
PASSWORD = "first admin password"


def _env(database_url: str) -> dict[str, str]:
    return os.environ | {"CALLCENTER_DATABASE_URL": database_url, "CALLCENTER_LOG_LEVEL": "WARNING"}


def _add(database_url: str, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, "user", "add", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(database_url),
        timeout=60,
        check=False,
    )


def test_first_admin_from_stdin_can_log_in(
    database_url: str, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    result = _add(
        database_url,
        "admin",
        "--role",
        "admin",
        "--display-name",
        "Kepala",
        "--queue-member-name",
        "Operator Kepala",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert "created admin 'admin'" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    with session_factory() as session:
        user = session.scalars(select(User)).one()
        assert (user.username, user.role, user.display_name) == ("admin", Role.admin, "Kepala")
        assert user.queue_member_name == "Operator Kepala"
        assert verify_password(user.password_hash, PASSWORD)
        assert user.password_hash.startswith(PRODUCTION_HASH)
    token = client.post("/api/v1/auth/token", data={"username": "admin", "password": PASSWORD})
    assert token.json()["role"] == "admin"


def test_duplicate_and_short_password_fail_with_a_message_and_store_nothing(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    assert _add(database_url, "andi", "--role", "operator", stdin=PASSWORD).returncode == 0
    again = _add(database_url, "andi", "--role", "admin", stdin=PASSWORD)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    short = _add(database_url, "maria", "--role", "operator", stdin="short\n")
    assert short.returncode == 1
    assert "at least 8" in short.stderr
    bad_role = _add(database_url, "maria", "--role", "root", stdin=PASSWORD)
    assert bad_role.returncode == 2
    assert "invalid choice" in bad_role.stderr
    with session_factory() as session:
        assert session.scalars(select(User.username)).all() == ["andi"]
        assert session.scalars(select(User.role)).one() is Role.operator


def test_refuses_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    result = _add(f"sqlite:///{tmp_path / 'empty.db'}", "admin", "--role", "admin", stdin=PASSWORD)
    assert result.returncode == 2
    assert "callcenter migrate" in result.stderr


def _run_on_terminal(database_url: str, answers: list[str]) -> tuple[int, str]:
    """Run `user add` with a pseudo-terminal as its controlling tty, answering each prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the console script
        os.execve(
            SCRIPT, [SCRIPT, "user", "add", "yohanes", "--role", "operator"], _env(database_url)
        )
    transcript, since_answer = b"", b""
    pending = list(answers)
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        transcript += chunk
        since_answer += chunk
        if pending and since_answer.rstrip().endswith(b":"):
            os.write(fd, pending.pop(0).encode() + b"\n")
            since_answer = b""
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript.decode(errors="replace")


def test_prompts_twice_on_a_terminal_without_echo(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    code, output = _run_on_terminal(database_url, [PASSWORD, PASSWORD])
    assert code == 0, output
    assert "Password (again):" in output
    assert PASSWORD not in output  # not echoed
    with session_factory() as session:
        user = session.scalars(select(User)).one()
        assert verify_password(user.password_hash, PASSWORD)


def test_two_different_passwords_on_a_terminal_create_nothing(
    database_url: str, session_factory: sessionmaker[Session]
) -> None:
    code, output = _run_on_terminal(database_url, [PASSWORD, "something else"])
    assert code == 1
    assert "the two passwords differ" in output
    with session_factory() as session:
        assert session.scalars(select(User)).all() == []


def test_list_users_and_reset_a_password(
    database_url: str, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    """An admin on the server lists the users and resets a forgotten password (and a lockout)."""
    assert _add(database_url, "andi", "--role", "operator", stdin=PASSWORD + "\n").returncode == 0

    listed = subprocess.run(
        [SCRIPT, "user", "list"],
        capture_output=True,
        text=True,
        env=_env(database_url),
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split("\t")[:4] == ["id", "username", "role", "active"]
    assert row.split("\t")[1:4] == ["andi", "operator", "yes"]

    with session_factory.begin() as session:
        user = session.scalars(select(User).where(User.username == "andi")).one()
        user.failed_logins = 3
    reset = subprocess.run(
        [SCRIPT, "user", "reset-password", "andi"],
        input="a brand new password\n",
        capture_output=True,
        text=True,
        env=_env(database_url),
        timeout=60,
        check=False,
    )
    assert reset.returncode == 0, reset.stderr
    assert "a brand new password" not in reset.stdout + reset.stderr
    login = client.post(
        "/api/v1/auth/token", data={"username": "andi", "password": "a brand new password"}
    )
    assert login.status_code == 200, login.text
    with session_factory() as session:
        user = session.scalars(select(User).where(User.username == "andi")).one()
        assert session.get(LoginFailure, username_key("andi")) is None  # the lockout is cleared
        assert not verify_password(user.password_hash, PASSWORD)
        assert verify_password(user.password_hash, "a brand new password")
        assert user.password_hash.startswith(PRODUCTION_HASH)

    unknown = subprocess.run(
        [SCRIPT, "user", "reset-password", "nobody"],
        input="a brand new password\n",
        capture_output=True,
        text=True,
        env=_env(database_url),
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 1
    assert "no user 'nobody'" in unknown.stderr
