"""One mapping from a provider's HTTP status to the error a client sees, for every adapter."""

from __future__ import annotations

import orjson

from proxy.upstream.base import UpstreamError


def error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "invalid_request_error" if 400 <= status < 500 else "upstream_error"


def from_status(status: int, body: bytes) -> UpstreamError:
    """A provider's error answer: its own message and code when it sent OpenAI's error shape."""
    message, code = body.decode("utf-8", "replace").strip()[:2000], None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        error = parsed["error"]
        message = str(error.get("message") or message)
        code = str(error["code"]) if error.get("code") is not None else None
    message = message or f"provider answered HTTP {status}"
    return UpstreamError(status, message, type=error_type(status), code=code)
