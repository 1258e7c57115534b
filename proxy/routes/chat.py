"""POST /v1/chat/completions: identify, plan (policy, recall, inject), forward, record, respond."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from proxy.chat_body import validate_chat
from proxy.errors import ApiError, error_body, error_response
from proxy.feedback import record_feedback
from proxy.identity import Identity, identify
from proxy.ids import feedback_id, interaction_id
from proxy.pipeline import Plan, plan
from proxy.records import Feedback, Interaction
from proxy.routes.common import json_body, services
from proxy.services import Services
from proxy.streaming import DONE, StreamAssembler, sse
from proxy.upstream import Piece, UpstreamError


@dataclass
class Turn:
    """One request's state from arrival to the trail row."""

    id: str
    started: float
    body: dict[str, Any]
    identity: Identity
    plan: Plan
    upstream_at: float

    def headers(self) -> dict[str, str]:
        return {
            "X-Loopwise-Interaction-Id": self.id,
            "X-Loopwise-Lessons": ",".join(dict.fromkeys(i.lesson_id for i in self.plan.injected)),
            "X-Loopwise-Overhead-Ms": f"{(self.upstream_at - self.started) * 1000:.2f}",
        }

    def record(
        self,
        svc: Services,
        *,
        response: dict[str, Any] | None,
        text: str,
        finish_reason: str | None,
        usage: dict[str, Any] | None,
        served_model: str | None,
        status: str,
        error: dict[str, Any] | None = None,
        ttft: float | None = None,
        post_ms: float = 0.0,
    ) -> None:
        now = time.perf_counter()
        usage = usage or {}
        policy = self.plan.policy
        svc.db.record(
            Interaction(
                id=self.id,
                created_at=time.time() - (now - self.started),  # when the turn began
                session_id=self.identity.session_id,
                user_id=self.identity.user_id,
                user_role=self.identity.user_role,
                app=self.identity.app,
                tenant=self.identity.tenant,
                requested_model=self.body["model"],
                served_model=served_model,
                policy=policy.name if policy else None,
                policy_version=self.plan.policy_version,
                arm=self.plan.arm,
                stream=bool(self.body.get("stream")),
                request=self.body,
                sent_messages=self.plan.messages,
                injected=self.plan.injected,
                shadow=self.plan.shadow,
                recall_status=self.plan.recall.status,
                recall_ms=self.plan.recall.ms,
                recall_error=self.plan.recall.error,
                question=self.plan.question,
                response=response,
                response_text=text,
                finish_reason=finish_reason,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                latency_ms=(now - self.started) * 1000,
                ttft_ms=(ttft - self.started) * 1000 if ttft else None,
                overhead_ms=(self.upstream_at - self.started) * 1000 + post_ms,
                status=status,
                error=error,
            )
        )


def _signal(svc: Services, interaction: str, signal: str) -> None:
    """Implicit feedback, recorded in the background (after the trail row is written)."""
    feedback = Feedback(
        id=feedback_id(),
        interaction_id=interaction,
        created_at=time.time(),
        source="implicit",
        signal=signal,
    )
    svc.spawn(record_feedback(feedback, svc.db, svc.policies.current, svc.index))


async def chat_completions(request: Request) -> Response:
    started = time.perf_counter()
    svc = services(request)
    body = await json_body(request)
    validate_chat(body)
    svc.router.deployments(body["model"])  # unknown model: 404 before any work
    identity = identify(request.headers, body)
    turn_id = interaction_id()
    planned = await plan(svc.policies.current, svc.embedder, svc.index, body, identity)
    repeated = svc.regenerate.observe(identity.session_id, planned.question, turn_id)
    if repeated:
        _signal(svc, repeated, "regenerate")
    upstream_body = {**body, "messages": planned.messages}
    turn = Turn(turn_id, started, body, identity, planned, time.perf_counter())
    if body.get("stream"):
        return await _stream(svc, turn, upstream_body)
    return await _complete(svc, turn, upstream_body)


def _failure(svc: Services, turn: Turn, exc: UpstreamError) -> Response:
    error = ApiError(exc.status, exc.message, type=exc.type, code=exc.code)
    turn.record(
        svc,
        response=None,
        text="",
        finish_reason=None,
        usage=None,
        served_model=None,
        status="error",
        error=error.body()["error"],
    )
    return error_response(error, turn.headers())


def _quoted(value: object) -> bytes | None:
    return orjson.dumps(value) if isinstance(value, str) and value else None


def _with_our_id(raw: bytes, upstream_id: object, ours: bytes) -> bytes:
    """The provider's bytes with its response id swapped for the interaction id."""
    theirs = _quoted(upstream_id)
    return raw.replace(theirs, ours) if theirs else raw


async def _complete(svc: Services, turn: Turn, upstream_body: dict[str, Any]) -> Response:
    try:
        answer, deployment = await svc.router.complete(turn.body["model"], upstream_body)
    except UpstreamError as exc:
        return _failure(svc, turn, exc)
    back = time.perf_counter()
    data = answer.data
    upstream_id, data["id"] = data.get("id"), turn.id
    if answer.raw is not None:  # relayed: the provider's bytes, only the id swapped
        content = _with_our_id(answer.raw, upstream_id, orjson.dumps(turn.id))
    else:
        content = orjson.dumps(data)
    choices = data.get("choices") or [{}]
    message = choices[0].get("message") or {}
    text = message.get("content")
    turn.record(
        svc,
        response=data,
        text=text if isinstance(text, str) else "",
        finish_reason=choices[0].get("finish_reason"),
        usage=data.get("usage"),
        served_model=data.get("model") or deployment.provider_model,
        status="ok",
        post_ms=(time.perf_counter() - back) * 1000,
    )
    return Response(content, media_type="application/json", headers=turn.headers())


def _encode(piece: Piece, ours: bytes, turn_id: str) -> bytes:
    if piece.raw is None:  # re-encoded (litellm)
        return b"".join(sse({**chunk, "id": turn_id}) for chunk in piece.chunks)
    if not piece.chunks:
        return piece.raw
    return _with_our_id(piece.raw, piece.chunks[0].get("id"), ours)


async def _stream(svc: Services, turn: Turn, upstream_body: dict[str, Any]) -> Response:
    try:
        opened = await svc.router.open_stream(turn.body["model"], upstream_body)
    except UpstreamError as exc:
        return _failure(svc, turn, exc)
    first_at = time.perf_counter()
    ours = orjson.dumps(turn.id)

    async def relay() -> AsyncIterator[bytes]:
        assembled = StreamAssembler()
        status, error = "abandoned", None
        try:
            piece = opened.first
            while piece is not None:
                for chunk in piece.chunks:
                    assembled.add(chunk)
                data = _encode(piece, ours, turn.id)
                if data:
                    yield data
                piece = await anext(opened.rest, None)
            status = "ok"
            yield DONE
        except UpstreamError as exc:
            status = "error"
            error = error_body(exc.message, exc.type, None, exc.code)
            yield sse(error)
            yield DONE
        finally:
            await opened.rest.aclose()
            turn.record(
                svc,
                response=assembled.response(turn.id),
                text=assembled.text,
                finish_reason=assembled.finish_reason,
                usage=assembled.usage,
                served_model=assembled.model or opened.deployment.provider_model,
                status=status,
                error=error["error"] if error else None,
                ttft=first_at,
            )
            if status == "abandoned":
                _signal(svc, turn.id, "abandon")

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={
            **turn.headers(),
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )
