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

_SECRETS = [
    # "Secret: x" (AMI), "password=x", "token": "x", "CALLCENTER_TOKEN_SECRET=x"
    re.compile(
        r"(?i)((?:secret|password|passwd|token|authorization|api[_-]?key)[\"']?\s*[:=]\s*"
        r"[\"']?)(?!\*\*\*)([^\s\"',;&]+)"
    ),
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]+)"),
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


class ContextFilter(logging.Filter):
    """Puts the request id and call fields on each record; masks secrets in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        for key, value in (_call.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        message = redact(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
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
        for key in ("request_id", *CALL_FIELDS):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info or record.exc_text:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(line, ensure_ascii=False, default=str)


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
        return f"{text} [{' '.join(context)}]" if context else text


def configure(level: str, log_format: str = "auto", stream: TextIO | None = None) -> None:
    """Root logging for a command: ``json``, ``text``, or ``auto`` (text on a terminal)."""
    stream = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers write through the root handler (one format for every line).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
