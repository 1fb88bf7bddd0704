"""Every HTTP request: a request id (kept from nginx's X-Request-ID or made), on the response and
on every log line written while it is handled, and its metrics (route template, status, time).

A plain ASGI middleware, not BaseHTTPMiddleware: the live stream passes through untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callcenter import logs, metrics

log = logging.getLogger("callcenter.http")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LOGIN_ROUTE = "/api/v1/auth/token"


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope["method"]
            # The access line (uvicorn's own is redundant): the path without its query string.
            if log.isEnabledFor(logging.INFO):  # a benchmark runs at WARNING: no dict
                log.info(
                    "%s %s %d",
                    method,
                    scope["path"],
                    status,
                    extra={
                        "method": method,
                        "path": scope["path"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            logs.request_id.reset(token)
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_LATENCY.labels(route, method).observe(elapsed)
            if route == LOGIN_ROUTE and status == 401:
                metrics.LOGIN_FAILURES.inc()
