"""POST /v1/chat/completions and POST /v1/explain: the request path over HTTP."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from proxy.chat import forward
from proxy.chat.pipeline import explanation, plan
from proxy.chat.request import client_fields, identify, validate_chat
from proxy.chat.turn import Outcome, Turn
from proxy.http.access import authorize
from proxy.http.common import json_body, json_response, services
from proxy.records import interaction_id
from proxy.services import Services


def _finish(svc: Services, turn: Turn, outcome: Outcome) -> None:
    """Where every turn ends: its trail row, and `abandon` when the client left mid-stream."""
    svc.db.record(turn.interaction(outcome))
    if outcome.status == "abandoned":
        svc.signal(turn.id, "abandon")


async def chat_completions(request: Request) -> Response:
    started = time.perf_counter()
    svc = services(request)
    principal = authorize(request, "chat")
    body = client_fields(await json_body(request))
    validate_chat(body)
    svc.router.deployments(body["model"])  # unknown model: 404 before any work
    identity = identify(request.headers, body, principal, svc.settings.access.trusted_roles)
    turn_id = interaction_id()
    planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity)
    svc.observe(turn_id, identity, body["messages"], planned.question)
    upstream_body = {**body, "messages": planned.messages}
    turn = Turn(turn_id, started, body, identity, planned, time.perf_counter(), svc.tokens.issue(turn_id))

    def finish(outcome: Outcome) -> None:
        _finish(svc, turn, outcome)

    if body.get("stream"):
        events = await forward.stream(svc.router, turn, upstream_body, finish)
        headers = {**turn.headers(), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    content = await forward.complete(svc.router, turn, upstream_body, finish)
    return Response(content, media_type="application/json", headers=turn.headers())


async def post_explain(request: Request) -> Response:
    """The chat body in, what Loopwise would send out (no provider call)."""
    svc = services(request)
    principal = authorize(request, "read")  # it shows lessons: other users' words
    body = client_fields(await json_body(request))
    validate_chat(body)
    identity = identify(request.headers, body, principal, svc.settings.access.trusted_roles)
    planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity)
    return json_response(explanation(planned, identity))
