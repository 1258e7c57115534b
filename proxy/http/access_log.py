"""One access-log line and the HTTP metrics for every request, however it ended.

Pure ASGI rather than starlette's BaseHTTPMiddleware, so a streamed answer is timed to its last
byte and is not buffered. The line names the route by its endpoint, never the path (a path holds
user ids and session ids), and carries no header but the caller's app, cut to printable ASCII:
`method route status ms bytes key app interaction`, the key by its id (as text, or as JSON fields with
`log_format: json`)."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("loopwise.access")
APP_CHARS = 64


def _printable(raw: bytes) -> str:
    return "".join(c for c in raw.decode("latin-1")[:APP_CHARS] if " " < c <= "~")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "bytes": 0, "interaction": ""}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-loopwise-interaction-id":
                        seen["interaction"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                seen["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._done(scope, seen, time.perf_counter() - began)

    def _done(self, scope: Scope, seen: dict[str, Any], seconds: float) -> None:
        endpoint = scope.get("endpoint")
        route = "unmatched"
        if endpoint is not None:  # a function's name, or a mounted app's class (StaticFiles)
            route = getattr(endpoint, "__name__", None) or type(endpoint).__name__
        state = scope.get("state") or {}
        services = state.get("services")
        if services is not None:
            services.metrics.observe_http(scope["method"], route, seen["status"], seconds)
            if not services.settings.access_log:
                return
        app = next((_printable(v) for k, v in scope.get("headers", ()) if k == b"x-app"), "")
        fields = {
            "method": scope["method"],
            "route": route,
            "status": seen["status"],
            "ms": round(seconds * 1000, 2),
            "bytes": seen["bytes"],
            "key": state.get("principal", ""),
            "app": app,
            "interaction": seen["interaction"],
        }
        log.info(
            "%s %s %s %.1fms %dB key=%s app=%s interaction=%s", fields["method"], route, fields["status"],
            fields["ms"], fields["bytes"], fields["key"] or "-", app or "-", fields["interaction"] or "-",
            extra=fields,
        )  # fmt: skip
