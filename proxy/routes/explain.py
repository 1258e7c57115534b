"""POST /v1/explain: the chat body in, what Loopwise would send out (no provider call)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from proxy.explain import explain
from proxy.routes.common import json_body, json_response, services


async def post_explain(request: Request) -> Response:
    return json_response(await explain(services(request), await json_body(request), request.headers))
