"""POST /v1/completions and POST /v1/embeddings: relayed to the provider as they came (no
policy, recall or injection: there is no conversation to correct) and recorded in the trail."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from proxy.chat import forward
from proxy.chat.pipeline import Plan
from proxy.chat.request import client_fields, environment_for, identify
from proxy.chat.turn import Outcome, Turn
from proxy.errors import ApiError, UpstreamError
from proxy.http.access import authorize
from proxy.http.chat import client_retry, finisher, respond
from proxy.http.common import json_body, services
from proxy.records import interaction_id

NO_RECALL = "relayed without recall"


def _first_text(value: Any) -> str:
    """What the trail keeps as the question: the prompt, or the first of several."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return ""


def _checked(body: dict[str, Any], field: str) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "`model` is required: the model_name of a model_list entry", param="model")
    value = body.get(field)
    if not (isinstance(value, str) or (isinstance(value, list) and value)):
        raise ApiError(400, f"`{field}` must be a string or a non-empty array", param=field)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise ApiError(400, "`stream` must be true or false", param="stream")


async def _turn(request: Request, field: str, endpoint: str, prefix: str) -> Turn:
    started = time.perf_counter()
    svc = services(request)
    principal = authorize(request, "chat")
    body = client_fields(await json_body(request))
    _checked(body, field)
    svc.router.deployments(body["model"])  # unknown model: 404 before any work
    identity = identify(request.headers, body, principal, svc.settings.access.trusted_roles)
    environment = environment_for(identity, svc.settings.environment, svc.settings.environments)
    turn_id = interaction_id(prefix)
    plan = Plan.unplanned(_first_text(body[field]), svc.policies.current.version, NO_RECALL)
    return Turn(
        turn_id,
        started,
        body,
        identity,
        plan,
        time.perf_counter(),
        svc.tokens.issue(turn_id),
        endpoint=endpoint,
        client_retry=client_retry(request),
        environment=environment,
    )


async def completions(request: Request) -> Response:
    turn = await _turn(request, "prompt", "completions", "cmpl-")
    svc = services(request)
    return await respond(svc, svc.router.on_path("completions"), turn, turn.body)


async def embeddings(request: Request) -> Response:
    """The provider's vectors as its own bytes (they carry no id to swap); the trail keeps the
    usage and the shape of the answer, not the vectors."""
    turn = await _turn(request, "input", "embeddings", "emb-")
    svc = services(request)
    finish = finisher(svc, turn)
    if turn.body.get("stream"):
        raise ApiError(400, "embeddings cannot be streamed", param="stream")
    try:
        answer, deployment = await svc.router.on_path("embeddings").complete(
            turn.body["model"], turn.body, client_retry=turn.client_retry
        )
    except UpstreamError as exc:
        raise forward.failed(turn, exc, finish) from None
    turn.answered_by(answer.headers, answer.attempts)
    finish(Outcome.embedded(answer.data, deployment, answer.attempts))
    content = answer.raw if answer.raw is not None else orjson.dumps(answer.data)
    return Response(content, media_type="application/json", headers=turn.headers())
