"""A scripted provider on a real socket (127.0.0.1), so both adapters are tested the same way.

respx cannot see aiohttp, which the byte relay uses, so the provider is a real HTTP server. Its
routes take respx-style side effects: a callable from `httpx.Request` to `httpx.Response` (sync
or async; the content may be an async iterator, and an exception raised while iterating cuts
the connection mid-body, as a provider that dies does).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

SideEffect = Callable[[httpx.Request], Any]


@dataclass
class Route:
    side_effect: SideEffect | None = None
    return_value: httpx.Response | None = None
    call_count: int = 0
    disconnects: int = 0  # clients that went away before the body ended

    def mock(
        self, side_effect: SideEffect | None = None, return_value: httpx.Response | None = None
    ) -> Route:
        self.side_effect, self.return_value = side_effect, return_value
        return self

    async def answer(self, request: httpx.Request) -> httpx.Response:
        self.call_count += 1
        if self.side_effect is None:
            assert self.return_value is not None
            return self.return_value
        result = self.side_effect(request)
        return await result if inspect.isawaitable(result) else result  # type: ignore[no-any-return]


class UpstreamServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._app, host="127.0.0.1", port=0, lifespan="off", log_level="error", interface="asgi3"
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        for _ in range(400):
            if self._server.started:
                return
            threading.Event().wait(0.01)
        raise RuntimeError("fake upstream did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def origin(self) -> str:
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def url(self) -> str:
        """The base URL of the default provider (what `api_base` is set to)."""
        return f"{self.origin}/v1"

    def post(self, path: str) -> Route:
        """The route for `path` (e.g. "/down/v1/chat/completions"), made on first use."""
        return self.routes.setdefault(path, Route())

    def reset(self) -> None:
        self.routes = {}

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(
            scope["method"], f"{self.origin}{scope['path']}", headers=headers, content=body
        )
        route = self.routes.get(scope["path"])
        if route is None:
            response = httpx.Response(404, json={"error": {"message": f"no route {scope['path']}"}})
        else:
            response = await route.answer(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k.lower(), v) for k, v in response.headers.raw],
            }
        )
        gone = asyncio.ensure_future(receive())  # the next message is http.disconnect
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                if gone.done():
                    if route is not None:
                        route.disconnects += 1
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            gone.cancel()
