"""What the trail stores: interactions, feedback and lessons (frozen; built at the edges), and
their identifiers. The interaction id is the response `id` clients send back with feedback."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

LessonStatus = Literal["pending", "active", "rejected", "retired"]
LESSON_STATUSES: tuple[LessonStatus, ...] = ("pending", "active", "rejected", "retired")


@dataclass(frozen=True)
class InjectedLesson:
    lesson_id: str
    score: float
    injector: str


@dataclass(frozen=True)
class Interaction:
    id: str
    created_at: float
    session_id: str | None
    user_id: str | None
    user_role: str | None
    app: str
    tenant: str | None
    requested_model: str
    served_model: str | None
    policy: str | None
    policy_version: str | None
    arm: str
    stream: bool
    request: dict[str, Any]
    sent_messages: list[dict[str, Any]]
    injected: tuple[InjectedLesson, ...]
    recall_status: str
    recall_ms: float | None
    recall_error: str | None
    question: str
    response: dict[str, Any] | None
    response_text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    ttft_ms: float | None
    overhead_ms: float
    status: str
    error: dict[str, Any] | None = None
    shadow: tuple[InjectedLesson, ...] = ()  # control arm: what would have been injected
    endpoint: str = "chat.completions"  # the API the client called: ENDPOINTS
    attempts: int = 0  # provider calls made (retries and fallbacks included)
    cost_usd: float | None = None  # from the usage and the deployment's prices, when known
    upstream_id: str | None = None  # the provider's own response id
    chat_messages: list[dict[str, Any]] | None = None  # a translated API's conversation, as chat
    recall_stage: str | None = None  # which stage of recall decided: scope | gate | model
    key_id: str | None = None  # the key that made the call (`master`; `open` without keys)
    feedback_wanted: str | None = None  # why the answer asked the app for feedback (a reason), if it did
    environment: str | None = None  # where the app runs (`X-Loopwise-Environment`, else the config's)
    model_version: str | None = (
        None  # the deployment's `model_info.version`, else the model the provider named
    )


# The APIs a client may call; every one but chat is translated to or relayed beside it.
ENDPOINTS = ("chat.completions", "responses", "messages", "completions", "embeddings")


@dataclass(frozen=True)
class Feedback:
    id: str
    interaction_id: str
    created_at: float
    source: str
    user_id: str | None = None
    user_role: str | None = None
    rating: int | None = None
    score: float | None = None
    score_min: float | None = None
    score_max: float | None = None
    categories: tuple[str, ...] = ()
    comment: str | None = None
    correction: str | None = None
    dimensions: dict[str, float] = field(default_factory=dict)
    preferred_over: str | None = None
    signal: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    lesson_id: str | None = None
    negative: bool | None = None  # the verdict the effect counters used, fixed when recorded
    # the part of the answer it is about, in code points of `response_text`: start, end, the text
    # there, and what it should have said (None when only marked wrong)
    span: dict[str, Any] | None = None

    @property
    def normalised_score(self) -> float | None:
        if self.score is None:
            return None
        low = 0.0 if self.score_min is None else self.score_min
        high = 1.0 if self.score_max is None else self.score_max
        return (self.score - low) / (high - low) if high > low else None


@dataclass(frozen=True)
class Lesson:
    id: str
    created_at: float
    updated_at: float
    status: LessonStatus
    app: str
    tenant: str | None
    user_id: str | None
    interaction_id: str
    feedback_ids: tuple[str, ...]
    question: str
    bad_answer: str
    categories: tuple[str, ...]
    comment: str
    correction: str
    policy: str | None
    version: int = 1
    times_injected: int = 0
    negative_after: int = 0
    positive_after: int = 0
    review_note: str | None = None
    times_held_out: int = 0  # recalled for a control-arm turn, so not injected
    control_negative: int = 0
    control_positive: int = 0
    reviewed_at: float | None = None  # when a person approved, rejected or retired it

    def payload(self) -> dict[str, Any]:
        """What the vector index keeps: filter fields plus what injectors render."""
        return {
            "lesson_id": self.id,
            "status": self.status,
            "app": self.app,
            "tenant": self.tenant or "",
            "user_id": self.user_id or "",
            "categories": list(self.categories),
            "question": self.question,
            "bad_answer": self.bad_answer,
            "comment": self.comment,
            "correction": self.correction,
        }


def correction_key(correction: str) -> str:
    """What two lessons teaching the same correction share (m012, `lessons.correction_key`): a
    digest of it case folded in full (SQL's lower() folds only ASCII in SQLite) and spacing
    collapsed; a digest, so a 50,000-character correction still fits a btree entry. '' for none."""
    said = " ".join(correction.casefold().split())
    return hashlib.sha256(said.encode()).hexdigest() if said else ""


@dataclass(frozen=True)
class Preference:
    """One standing preference of one user (`learning/preferences`): a value of a dimension of
    form (length: brief or detailed, ...), in one tenant ('' for none) and app (`*`: every app),
    with the evidence behind it, newest last."""

    tenant: str
    app: str
    user_id: str
    dimension: str
    value: str
    strength: str  # explicit: the user said it; inferred: read off an answer they disliked
    evidence: tuple[dict[str, Any], ...]
    created_at: float
    updated_at: float


Scope = Literal["chat", "feedback", "read", "review", "admin", "metrics"]
# metrics: GET /metrics, counts over every tenant, so read only by a key bound to no tenant or app
SCOPES: tuple[Scope, ...] = ("chat", "feedback", "read", "review", "admin", "metrics")


@dataclass(frozen=True)
class Key:
    """A virtual key: what a client may do (scopes), for which apps (glob patterns) and tenant,
    and optionally as which user role. Only the SHA-256 of the secret is stored."""

    id: str
    name: str
    hash: str
    prefix: str  # the secret's first characters, to recognise it in a list
    scopes: tuple[str, ...]
    apps: tuple[str, ...]
    tenant: str | None
    user_role: str | None
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class Visibility:
    """Which rows a caller may see or change: apps matching `apps` (glob patterns; None: every
    app) in `tenant` (unless `all_tenants`). Storage turns it into a WHERE clause."""

    apps: tuple[str, ...] | None = None
    tenant: str | None = None
    all_tenants: bool = True


EVERYTHING = Visibility()


def interaction_id(prefix: str = "chatcmpl-") -> str:
    """An id in the shape the client's API uses (`chatcmpl-`, `resp_`, `msg_`, `cmpl-`)."""
    return f"{prefix}{uuid.uuid4().hex}"


def feedback_id() -> str:
    return f"fb-{uuid.uuid4().hex}"


def lesson_id() -> str:
    """A UUID string: the vector index uses it as the point id."""
    return str(uuid.uuid4())


def key_id() -> str:
    return f"key-{uuid.uuid4().hex[:16]}"
