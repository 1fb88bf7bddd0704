"""Every log line the suite writes, through the production pipeline, searched for secrets.

tests/conftest.py runs the whole session inside :func:`scanning` at INFO (production's level):
each record is formatted as `callcenter serve` would write it (callcenter.logs: context filter,
JSON formatter), and at the end of the session no line may hold a password, token or secret the
tests used. The teardown fails the session otherwise, naming the line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from callcenter.logs import ContextFilter, JsonFormatter
from tests.builders import PASSWORD

# Secrets the tests hand to the code (settings, fake Asterisk, users' passwords).
KNOWN_SECRETS = (
    PASSWORD,
    "ttu112secret",
    "s3cret-for-the-test",
    "the-real-one",
    "test-secret-" + "x" * 32,
)
PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JWT
    re.compile(r"\$argon2(id|i|d)\$"),  # a password hash
    re.compile(r"(?i)\bsecret:\s*(?!\*\*\*)\S+"),  # an AMI Login's Secret header
)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.addFilter(ContextFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is the logging module's to report
            self.handleError(record)


def findings(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        if any(secret in line for secret in KNOWN_SECRETS) or any(p.search(line) for p in PATTERNS):
            found.append(line)
    return found


@contextmanager
def scanning() -> Iterator[Recorder]:
    recorder = Recorder()
    root = logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    if level == logging.NOTSET or level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(level)
