"""A NUL character in a request is refused with 422, before any route sees it.

PostgreSQL refuses NUL in text (SQLite stores it): a query parameter or a body field holding one
was a 500 on PostgreSQL and a stored NUL on SQLite. The OpenAPI document says so (a pattern on
every free text the API takes: callcenter/api/openapi.py).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter.api.errors import error_body

DETAIL = "text may not contain the NUL character (U+0000)"


def has_nul(data: bytes, content_type: bytes = b"") -> bool:
    """NUL in a query string or form (``%00``), raw, or in a JSON string (``\\u0000``)."""
    if b"\x00" in data or (b"json" not in content_type and b"%00" in data):
        return True
    if b"json" in content_type and b"\\u0000" in data.lower():
        try:
            return _nul_in(orjson.loads(data))
        except orjson.JSONDecodeError:
            return False  # malformed: validation says so
    return False


def _nul_in(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_nul_in(v) for v in value)
    if isinstance(value, dict):
        return any(_nul_in(k) or _nul_in(v) for k, v in value.items())
    return False


class RefuseNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if has_nul(scope.get("query_string", b"")) or "\x00" in scope.get("path", ""):
            await _refuse(send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if has_nul(body, content_type):
            await _refuse(send)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _refuse(send: Send) -> None:
    payload: dict[str, Any] = {
        **error_body(422, DETAIL),
        "errors": [{"field": "request", "message": DETAIL, "type": "nul"}],
    }
    body = orjson.dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
