"""Domain errors. Each carries its HTTP status; one handler in the API turns them into responses.

CallCenterError
├── NotFound            404
├── Conflict            409  (stale write, duplicate)
├── InvalidInput        422
├── Unauthorized        401
├── Forbidden           403
├── TooManyRequests     429  (with Retry-After)
└── ServiceUnavailable  503
"""

from __future__ import annotations

from typing import Any, ClassVar


class CallCenterError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}


class NotFound(CallCenterError):
    status_code = 404
    code = "not_found"


class Conflict(CallCenterError):
    status_code = 409
    code = "conflict"


class InvalidInput(CallCenterError):
    status_code = 422
    code = "invalid_input"


class Unauthorized(CallCenterError):
    status_code = 401
    code = "unauthorized"


class Forbidden(CallCenterError):
    status_code = 403
    code = "forbidden"


class TooManyRequests(CallCenterError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.headers["Retry-After"] = str(retry_after)


class ServiceUnavailable(CallCenterError):
    status_code = 503
    code = "service_unavailable"
