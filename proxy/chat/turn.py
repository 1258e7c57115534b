"""One turn, from arrival to its trail row: its state, and the one `Outcome` it ends with.

Both the JSON and the streamed path end in an `Outcome`; `Turn.interaction(outcome)` is the one
place a trail row is built from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from proxy.chat.pipeline import Plan
from proxy.chat.request import Identity
from proxy.chat.stream import StreamAssembler
from proxy.errors import ApiError
from proxy.records import Interaction
from proxy.settings import Deployment
from proxy.upstream.base import Json
from proxy.upstream.pricing import cost_usd
from proxy.upstream.router import ATTEMPTS_HEADER


def adapter_of(deployment: Deployment) -> str:
    return "relay" if deployment.uses_relay else "litellm"


def version_of(deployment: Deployment, served: object) -> str | None:
    """The model's version as a trail dimension: the deployment's `model_info.version`, else
    the model the provider says answered (`gpt-4o-mini-2024-07-18`), else the configured one."""
    given = deployment.model_info.get("version")
    if given is not None and str(given).strip():
        return str(given).strip()[:128]
    return str(served)[:128] if isinstance(served, str) and served else deployment.provider_model


@dataclass(frozen=True)
class Outcome:
    """How the provider call ended: `ok`, `error`, or `abandoned` (the client left mid-stream)."""

    status: str
    response: Json | None = None
    text: str = ""
    finish_reason: str | None = None
    usage: Json | None = None
    served_model: str | None = None
    error: Json | None = None
    first_byte_at: float | None = None  # perf_counter() when a stream's first piece arrived
    post_ms: float = 0.0  # the proxy's own time after the provider answered
    attempts: int = 0  # provider calls made
    cost_usd: float | None = None
    upstream_id: str | None = None  # the provider's own response id
    adapter: str = "none"  # relay | litellm: what served the answer (none: no provider answered)
    model_version: str | None = None  # `version_of` the deployment that answered

    @classmethod
    def failed(cls, error: ApiError) -> Outcome:
        attempts = error.headers.get(ATTEMPTS_HEADER, "0")  # the router's count, also sent to the client
        return cls("error", error=error.body()["error"], attempts=int(attempts) if attempts.isdigit() else 0)

    @classmethod
    def answered(
        cls, data: Json, deployment: Deployment, post_ms: float, upstream_id: object, attempts: int
    ) -> Outcome:
        choices = data.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = first.get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
        if text is None and isinstance(first.get("text"), str):  # a text completion
            text = first["text"]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        return cls(
            "ok",
            response=data,
            text=text if isinstance(text, str) else "",
            finish_reason=first.get("finish_reason"),
            usage=usage,
            served_model=data.get("model") or deployment.provider_model,
            post_ms=post_ms,
            attempts=attempts,
            cost_usd=cost_usd(deployment, usage),
            upstream_id=upstream_id if isinstance(upstream_id, str) and upstream_id else None,
            adapter=adapter_of(deployment),
            model_version=version_of(deployment, data.get("model")),
        )

    @classmethod
    def embedded(cls, data: Json, deployment: Deployment, attempts: int) -> Outcome:
        """Vectors: the trail keeps how many and the usage, not the numbers themselves."""
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        vectors = data.get("data")
        count = len(vectors) if isinstance(vectors, list) else 0
        summary = {"object": data.get("object"), "model": data.get("model"), "vectors": count}
        return cls(
            "ok",
            response=summary,
            usage=usage,
            served_model=data.get("model") or deployment.provider_model,
            attempts=attempts,
            cost_usd=cost_usd(deployment, usage),
            adapter=adapter_of(deployment),
            model_version=version_of(deployment, data.get("model")),
        )

    @classmethod
    def streamed(
        cls,
        status: str,
        assembled: StreamAssembler,
        turn_id: str,
        deployment: Deployment,
        first_byte_at: float,
        error: ApiError | None = None,
        upstream_id: str | None = None,
        attempts: int = 1,
    ) -> Outcome:
        return cls(
            status,
            response=assembled.response(turn_id),
            text=assembled.text,
            finish_reason=assembled.finish_reason,
            usage=assembled.usage,
            served_model=assembled.model or deployment.provider_model,
            error=error.body()["error"] if error else None,
            first_byte_at=first_byte_at,
            attempts=attempts,
            cost_usd=cost_usd(deployment, assembled.usage),
            upstream_id=upstream_id,
            adapter=adapter_of(deployment),
            model_version=version_of(deployment, assembled.model),
        )


@dataclass
class Turn:
    """One request's state from arrival to the trail row."""

    id: str
    started: float  # perf_counter() at arrival
    body: Json
    identity: Identity
    plan: Plan
    upstream_at: float  # perf_counter() when the provider call began
    feedback_token: str = ""  # lets a browser post feedback on this answer alone
    endpoint: str = "chat.completions"  # the API the client called
    client_body: Json | None = None  # what the client sent, when `body` is its chat translation
    client_retry: int = 0  # the client's own retry count (x-stainless-retry-count)
    provider_headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    environment: str | None = None  # the request's, else the proxy's configured one
    feedback_wanted: str | None = None  # the reason this answer asks for feedback, once decided

    def answered_by(self, provider_headers: dict[str, str] | None, attempts: int) -> None:
        """What the provider's answer adds to the response headers."""
        self.provider_headers = dict(provider_headers or {})
        self.attempts = attempts

    def headers(self) -> dict[str, str]:
        headers = {
            **self.provider_headers,
            "X-Loopwise-Interaction-Id": self.id,
            "X-Loopwise-Feedback-Token": self.feedback_token,
            "X-Loopwise-Lessons": ",".join(dict.fromkeys(i.lesson_id for i in self.plan.injected)),
            "X-Loopwise-Overhead-Ms": f"{(self.upstream_at - self.started) * 1000:.2f}",
        }
        if self.attempts:
            headers["X-Loopwise-Attempts"] = str(self.attempts)
        if self.feedback_wanted:
            headers["X-Loopwise-Feedback-Wanted"] = self.feedback_wanted
        return headers

    def interaction(self, outcome: Outcome) -> Interaction:
        now = time.perf_counter()
        usage = outcome.usage or {}
        plan = self.plan
        return Interaction(
            id=self.id,
            created_at=time.time() - (now - self.started),  # when the turn began
            session_id=self.identity.session_id,
            user_id=self.identity.user_id,
            user_role=self.identity.user_role,
            app=self.identity.app,
            tenant=self.identity.tenant,
            key_id=self.identity.key_id,
            requested_model=self.body["model"],
            served_model=outcome.served_model,
            policy=plan.policy.name if plan.policy else None,
            policy_version=plan.policy_version,
            arm=plan.arm,
            stream=bool(self.body.get("stream")),
            request=self.client_body if self.client_body is not None else self.body,
            sent_messages=plan.messages,
            injected=plan.injected,
            shadow=plan.shadow,
            recall_status=plan.recall.status,
            recall_ms=plan.recall.ms,
            recall_error=plan.recall.error,
            recall_stage=plan.recall.stage,
            question=plan.question,
            response=outcome.response,
            response_text=outcome.text,
            finish_reason=outcome.finish_reason,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_ms=(now - self.started) * 1000,
            ttft_ms=(outcome.first_byte_at - self.started) * 1000 if outcome.first_byte_at else None,
            overhead_ms=(self.upstream_at - self.started) * 1000 + outcome.post_ms,
            status=outcome.status,
            error=outcome.error,
            endpoint=self.endpoint,
            attempts=outcome.attempts,
            cost_usd=outcome.cost_usd,
            upstream_id=outcome.upstream_id,
            chat_messages=self.body["messages"] if self.client_body is not None else None,
            feedback_wanted=self.feedback_wanted,
            environment=self.environment,
            model_version=outcome.model_version,
        )
