"""One exception hierarchy for every error a client may see, and one map from status to type.

`ApiError` carries what the OpenAI error shape needs; `UpstreamError` is the kind raised for a
provider's failure (it knows whether a retry may help). Both become responses at one boundary,
`proxy.http.errors`; after a stream has started, the same body goes out as a final SSE event.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


def error_type(status: int, *, upstream: bool = False) -> str:
    """The OpenAI `type` for a status. A provider's answer passed on is coarser: its 4xx is the
    client's request (`invalid_request_error`, 429 `rate_limit_error`), anything else an
    `upstream_error`."""
    if upstream:
        if status == 429:
            return "rate_limit_error"
        return "invalid_request_error" if 400 <= status < 500 else "upstream_error"
    return STATUS_TYPES.get(status, "api_error")


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class ApiError(Exception):
    """An error a client should see, with its HTTP status."""

    upstream = False

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})  # sent with the error response
        self.status = status
        self.message = message
        self.type = type or error_type(status, upstream=self.upstream)
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class UpstreamError(ApiError):
    """A provider failure, with the status a client should see and whether a retry may help."""

    upstream = True
    retry_after: float | None = None  # seconds the provider asked us to wait (Retry-After)

    def wait(self, seconds: float) -> UpstreamError:
        """Ask the client to wait too: the same error, carrying a Retry-After header."""
        self.retry_after = seconds
        self.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
        return self

    @property
    def retryable(self) -> bool:
        return self.status in (408, 409, 429) or self.status >= 500


def from_validation(exc: ValidationError, *, prefix: str = "") -> ApiError:
    """The first pydantic error as a 400 naming the offending field."""
    first = exc.errors()[0]
    param = prefix + ".".join(str(p) for p in first["loc"])
    message = str(first["msg"])
    if first["type"] == "extra_forbidden":
        message = "unrecognized field"
    return ApiError(
        400, f"{param}: {message}" if param else message, param=param or None, code=str(first["type"])
    )
