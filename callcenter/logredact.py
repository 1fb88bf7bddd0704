"""Keeps credentials out of log lines: query parameters that carry one, and bearer tokens.

The live stream takes its token in the URL (``?access_token=``: EventSource cannot set headers),
and uvicorn's access log writes every request's path with its query string. The filter
rewrites a record's message and arguments before any handler formats them.

>>> redact('GET /api/v1/live?access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln&x=1')
'GET /api/v1/live?access_token=[redacted]&x=1'
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMETER = re.compile(
    r"(?i)\b(access_token|token|password|secret|api_key|key)=([^&\s\"']+)"
)
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[\w.~+/-]+=*")
REDACTED = "[redacted]"
# uvicorn's loggers: the access log writes paths with their query strings.
LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")


def redact(text: str) -> str:
    text = _SECRET_PARAMETER.sub(rf"\1={REDACTED}", text)
    text = _BEARER.sub(rf"\1 {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install() -> None:
    """Once per process, on the loggers that write request lines (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
