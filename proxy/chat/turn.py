"""One turn, from arrival to its trail row: its state, and the one `Outcome` it ends with.

Both the JSON and the streamed path end in an `Outcome`; `Turn.interaction(outcome)` is the one
place a trail row is built from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from proxy.chat.pipeline import Plan
from proxy.chat.request import Identity
from proxy.chat.stream import StreamAssembler
from proxy.errors import ApiError
from proxy.records import Interaction
from proxy.upstream.base import Json


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

    @classmethod
    def failed(cls, error: ApiError) -> Outcome:
        return cls("error", error=error.body()["error"])

    @classmethod
    def answered(cls, data: Json, served_model: str, post_ms: float) -> Outcome:
        choices = data.get("choices") or [{}]
        message = choices[0].get("message") or {}
        text = message.get("content")
        return cls(
            "ok",
            response=data,
            text=text if isinstance(text, str) else "",
            finish_reason=choices[0].get("finish_reason"),
            usage=data.get("usage"),
            served_model=data.get("model") or served_model,
            post_ms=post_ms,
        )

    @classmethod
    def streamed(
        cls,
        status: str,
        assembled: StreamAssembler,
        turn_id: str,
        served_model: str,
        first_byte_at: float,
        error: ApiError | None = None,
    ) -> Outcome:
        return cls(
            status,
            response=assembled.response(turn_id),
            text=assembled.text,
            finish_reason=assembled.finish_reason,
            usage=assembled.usage,
            served_model=assembled.model or served_model,
            error=error.body()["error"] if error else None,
            first_byte_at=first_byte_at,
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

    def headers(self) -> dict[str, str]:
        return {
            "X-Loopwise-Interaction-Id": self.id,
            "X-Loopwise-Feedback-Token": self.feedback_token,
            "X-Loopwise-Lessons": ",".join(dict.fromkeys(i.lesson_id for i in self.plan.injected)),
            "X-Loopwise-Overhead-Ms": f"{(self.upstream_at - self.started) * 1000:.2f}",
        }

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
            requested_model=self.body["model"],
            served_model=outcome.served_model,
            policy=plan.policy.name if plan.policy else None,
            policy_version=plan.policy_version,
            arm=plan.arm,
            stream=bool(self.body.get("stream")),
            request=self.body,
            sent_messages=plan.messages,
            injected=plan.injected,
            shadow=plan.shadow,
            recall_status=plan.recall.status,
            recall_ms=plan.recall.ms,
            recall_error=plan.recall.error,
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
        )
