"""Structured logs: a JSON object a line with the request id or the call's fields, plain text on
a terminal, and no secret on any line (tests/log_scan.py scans the whole suite's lines)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from callcenter import logs
from tests import log_scan
from tests.builders import PASSWORD, make_user


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Lines(io.StringIO):
    def lines(self) -> list[str]:
        return self.getvalue().splitlines()


def unconfigure() -> None:
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
        root.removeHandler(handler)


@pytest.fixture
def written() -> Iterator[Lines]:
    """What a `callcenter` command writes, as JSON, while the test runs."""
    stream = Lines()
    logs.configure("INFO", "json", stream)
    try:
        yield stream
    finally:
        unconfigure()


def parsed(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def test_http_lines_carry_the_request_id_given_by_nginx_or_made(client: TestClient) -> None:
    stream = io.StringIO()
    logs.configure("INFO", "json", stream)
    try:
        given = client.get("/healthz", headers={"X-Request-ID": "nginx-abc123"})
        made = client.get("/readyz", headers={"X-Request-ID": "not valid!"})
    finally:
        unconfigure()
    assert given.headers["x-request-id"] == "nginx-abc123"
    made_id = made.headers["x-request-id"]
    assert len(made_id) == 32
    assert made_id != "not valid!"
    lines = [line for line in parsed(stream.getvalue().splitlines()) if "status" in line]
    assert {(line["path"], line["request_id"], line["status"]) for line in lines} == {
        ("/healthz", "nginx-abc123", 200),
        ("/readyz", made_id, 200),
    }
    for line in lines:
        assert set(line) >= {"time", "level", "logger", "message", "route", "duration_ms"}


def test_call_lines_carry_the_call_and_the_pbx(written: Lines) -> None:
    log = logging.getLogger("callcenter.ivr.session")
    with logs.call_context(uniqueid="1700000000.42", pbx="ttu-pbx-1"):
        log.warning("caller look-up missed for %s", "PJSIP/trunk-0001")
        with logs.call_context(call_id=7):
            log.info("classified")
    log.info("after the call")
    logs.set_listener_pbx("ttu-pbx-2")
    try:
        logging.getLogger("callcenter.ami.listener").warning(
            "call ended during the AMI gap", extra={"uniqueid": "1700000000.43"}
        )
        logging.getLogger("callcenter.api").info("not the listener")
    finally:
        logs.set_listener_pbx(None)
    keys = [
        {k: line.get(k) for k in ("uniqueid", "pbx", "call_id")} for line in parsed(written.lines())
    ]
    assert keys == [
        {"uniqueid": "1700000000.42", "pbx": "ttu-pbx-1", "call_id": None},
        {"uniqueid": "1700000000.42", "pbx": "ttu-pbx-1", "call_id": 7},
        {"uniqueid": None, "pbx": None, "call_id": None},
        {"uniqueid": "1700000000.43", "pbx": "ttu-pbx-2", "call_id": None},
        {"uniqueid": None, "pbx": None, "call_id": None},
    ]


def test_a_terminal_gets_plain_text() -> None:
    terminal = Terminal()
    logs.configure("INFO", "auto", terminal)
    try:
        with logs.call_context(uniqueid="1700000000.42"):
            logging.getLogger("callcenter.test").info("hello %s", "there")
    finally:
        unconfigure()
    (line,) = terminal.getvalue().splitlines()
    assert line.endswith("INFO callcenter.test: hello there [uniqueid=1700000000.42]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_secrets_are_masked_wherever_they_hide(written: Lines) -> None:
    log = logging.getLogger("callcenter.test")
    log.info("AMI action: %r", "Action: Login\r\nUsername: backend112\r\nSecret: ttu112secret")
    log.warning("database %s unreachable", "postgresql+psycopg://app:the-real-one@db/siaga112")
    log.info("header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl")
    try:
        raise ValueError(f"login with password={PASSWORD.replace(' ', '-')} failed")
    except ValueError:
        log.exception("unexpected")
    json_lines = written.lines()
    assert len(json_lines) == 4
    text = "\n".join(json_lines)
    assert "ttu112secret" not in text
    assert "the-real-one" not in text
    assert "eyJhbGci" not in text
    assert PASSWORD.replace(" ", "-") not in text
    assert text.count("***") >= 4
    assert log_scan.findings(json_lines) == []


def test_the_scanner_finds_a_leak() -> None:
    leaked = [
        '{"message": "login as andi with correct horse battery"}',
        '{"message": "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz"}',
        '{"message": "hash $argon2id$v=19$m=65536"}',
        '{"message": "fine"}',
    ]
    assert log_scan.findings(leaked) == leaked[:3]


def test_a_refused_login_logs_no_password(
    client: TestClient, session_factory: sessionmaker[Session], written: Lines
) -> None:
    with session_factory.begin() as session:
        make_user(session, username="maria")
    for password in ("wrong-password-1", PASSWORD):
        client.post("/api/v1/auth/token", data={"username": "maria", "password": password})
    json_lines = written.lines()
    assert json_lines, "the requests were logged"
    text = "\n".join(json_lines)
    assert "wrong-password-1" not in text
    assert log_scan.findings(json_lines) == []
