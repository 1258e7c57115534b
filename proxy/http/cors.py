"""OPTIONS answered for every path, so a browser's preflight from an origin not listed in
`access.cors_origins` gets a plain 204 without the headers that would let it in, never a 405.
Listed origins are answered by starlette's CORS middleware, which runs first."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

ALLOW = "GET, POST, DELETE, OPTIONS"


class AnswerOptions:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await Response(status_code=204, headers={"Allow": ALLOW})(scope, receive, send)
            return
        await self.app(scope, receive, send)
