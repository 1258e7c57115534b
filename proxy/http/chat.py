"""POST /v1/chat/completions and POST /v1/explain: the request path over HTTP, and `run_turn`,
which every API with recall and injection (chat, Responses, Anthropic messages) goes through."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from proxy.access.principal import Principal
from proxy.chat import asking, forward
from proxy.chat.forward import Writer
from proxy.chat.pipeline import explanation, plan
from proxy.chat.request import client_fields, environment_for, identify, validate_chat
from proxy.chat.turn import Outcome, Turn
from proxy.http.access import authorize
from proxy.http.common import json_body, json_response, services
from proxy.records import interaction_id
from proxy.services import Services
from proxy.upstream import Router

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def finisher(svc: Services, turn: Turn) -> forward.Finish:
    """Where every turn ends: its trail row, and `abandon` when the client left mid-stream."""

    def finish(outcome: Outcome) -> None:
        if not turn.body.get("stream") and outcome.status == "ok":  # a JSON answer's headers wait for it
            answer = (outcome.text, outcome.response)
            turn.feedback_wanted = asking.ask(turn.plan, turn.identity, svc.asks, svc.evidence, answer)
        interaction = turn.interaction(outcome)
        svc.db.record(interaction)
        svc.metrics.observe_turn(interaction, svc.router.label(interaction.requested_model), outcome.adapter)
        if outcome.status == "abandoned":
            svc.signal(turn.id, "abandon")

    return finish


def client_retry(request: Request) -> int:
    """How many times the client already retried this call (OpenAI's SDKs say so in a header)."""
    raw = request.headers.get("x-stainless-retry-count", "0")
    return min(int(raw), 100) if raw.isascii() and raw.isdigit() else 0


async def run_turn(
    request: Request,
    principal: Principal,
    body: dict[str, Any],
    *,
    endpoint: str = "chat.completions",
    id_prefix: str = "chatcmpl-",
    client_body: dict[str, Any] | None = None,
    writer_for: Callable[[str], Writer] | None = None,
) -> Response:
    """One chat turn: identify, recall and inject, forward, record. `body` is a checked chat
    body; for a translated API, `client_body` is what the client sent (the trail keeps it) and
    `writer_for(interaction_id)` writes the answer in the client's API."""
    started = time.perf_counter()
    svc = services(request)
    svc.router.deployments(body["model"])  # unknown model: 404 before any work
    identity = identify(request.headers, body, principal, svc.settings.access.trusted_roles)
    environment = environment_for(identity, svc.settings.environment, svc.settings.environments)
    turn_id = interaction_id(id_prefix)
    planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity, svc.profiles)
    embedded = planned.recall.embedded == planned.question  # the question's vector is cached
    svc.observe(turn_id, identity, body["messages"], planned.question, embedded)
    upstream_body = {**body, "messages": planned.messages}
    turn = Turn(
        turn_id,
        started,
        body,
        identity,
        planned,
        time.perf_counter(),
        svc.tokens.issue(turn_id),
        endpoint=endpoint,
        client_body=client_body,
        client_retry=client_retry(request),
        environment=environment,
    )
    if body.get("stream"):  # its headers leave before the answer: the reasons known now
        turn.feedback_wanted = asking.ask(planned, identity, svc.asks, svc.evidence)
    writer = writer_for(turn_id) if writer_for else None
    return await respond(svc, svc.router, turn, upstream_body, writer)


async def respond(
    svc: Services, router: Router, turn: Turn, body: dict[str, Any], writer: Writer | None = None
) -> Response:
    """Forward the turn and answer the client: a stream of events, or the whole answer."""
    finish = finisher(svc, turn)
    if turn.body.get("stream"):
        events = await forward.stream(router, turn, body, finish, writer)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={**turn.headers(), **STREAM_HEADERS}
        )
    content = await forward.complete(router, turn, body, finish, writer)
    return Response(content, media_type="application/json", headers=turn.headers())


async def chat_completions(request: Request) -> Response:
    principal = authorize(request, "chat")
    body = client_fields(await json_body(request))
    validate_chat(body)
    return await run_turn(request, principal, body)


async def post_explain(request: Request) -> Response:
    """The chat body in, what Loopwise would send out (no provider call)."""
    svc = services(request)
    principal = authorize(request, "read")  # it shows lessons: other users' words
    body = client_fields(await json_body(request))
    return json_response(await explain(svc, principal, request.headers, body))


async def explain(
    svc: Services, principal: Principal, headers: Mapping[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    """What Loopwise would do with a chat body: the plan and the messages, no provider call and
    no trail row (the API's explain and the console's)."""
    validate_chat(body)
    identity = identify(headers, body, principal, svc.settings.access.trusted_roles)
    planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity, svc.profiles)
    return explanation(planned, identity)
