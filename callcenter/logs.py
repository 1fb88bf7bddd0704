"""Logging: one JSON object per line for journald and log shippers, plain text on a terminal.

Context rides in context variables, so a line carries it without every call site passing it:
``request_id`` on every line logged while an HTTP request is handled (set by
callcenter/api/observe.py), and ``call_id`` / ``uniqueid`` / ``pbx`` on lines about one call
(``with call_context(uniqueid=..., pbx=...):``, or ``extra={"uniqueid": ...}`` on one line).
Nothing that looks like a secret leaves: values of secret-named fields and ``Bearer`` tokens,
passwords in URLs and ``Secret:`` headers (an AMI Login action) are masked on every line.

>>> redact("Action: Login\\r\\nUsername: backend112\\r\\nSecret: hunter2")
'Action: Login\\r\\nUsername: backend112\\r\\nSecret: ***'
>>> redact("postgresql+psycopg://app:pa55@db/siaga112")
'postgresql+psycopg://app:***@db/siaga112'
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_call: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("call", default=None)
CALL_FIELDS = ("call_id", "uniqueid", "linkedid", "pbx")
# Fields a line may carry (``extra=``) that the JSON line shows as its own keys.
FIELDS = ("request_id", *CALL_FIELDS, "method", "path", "route", "status", "duration_ms")

_SECRETS = [
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]+)"),
    re.compile(r"(eyJ)([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"),  # any JWT
    # "Secret: x" (AMI), "password=x", "token": "x", "CALLCENTER_TOKEN_SECRET=x"
    re.compile(
        r"(?i)((?:secret|password|passwd|token|authorization|api[_-]?key)[\"']?\s*[:=]\s*"
        r"[\"']?)(?!\*\*\*|bearer\b)([^\s\"',;&]+)"
    ),
    re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)"),  # user:password@host
]


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(
            lambda m: m.group(1) + "***" + (m.group(3) if m.lastindex == 3 else ""), text
        )
    return text


@contextmanager
def call_context(**fields: Any) -> Iterator[None]:
    """Lines logged inside carry these call fields (call_id, uniqueid, linkedid, pbx)."""
    token = _call.set({**(_call.get() or {}), **fields})
    try:
        yield
    finally:
        _call.reset(token)


_listener_pbx: str | None = None


def set_listener_pbx(pbx: str | None) -> None:
    """The PBX this process's AMI listener serves: put on every line it logs (one a process)."""
    global _listener_pbx
    _listener_pbx = pbx


class ContextFilter(logging.Filter):
    """Puts the request id and the call fields in force on each record (formatters add them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        for key, value in (_call.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if (
            _listener_pbx is not None
            and record.name.startswith("callcenter.ami")
            and not hasattr(record, "pbx")
        ):
            record.pbx = _listener_pbx
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the context present."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # Masked as a whole: whatever field a secret hides in (message, exception, context).
        return redact(json.dumps(line, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the context in brackets after the message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [
            f"{key}={getattr(record, key)}"
            for key in ("request_id", *CALL_FIELDS)
            if getattr(record, key, None) is not None
        ]
        return redact(f"{text} [{' '.join(context)}]" if context else text)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``stream``, or to whatever sys.stderr is at the time of each line."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._fixed = stream  # the base class set sys.stderr of this moment: not kept

    @property
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        self._fixed = value


def configure(level: str, log_format: str = "auto", stream: TextIO | None = None) -> None:
    """Root logging for a command: ``json``, ``text``, or ``auto`` (text on a terminal)."""
    use_json = log_format == "json" or (
        log_format == "auto" and not (stream or sys.stderr).isatty()
    )
    handler = _Handler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)  # a second configure (tests run commands in one process)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers write through the root handler (one format for every line).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
