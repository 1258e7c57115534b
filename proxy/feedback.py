"""The feedback path: validate, store durably, learn, index. HTTP and implicit signals share it."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies import LearnConfig, MatchContext, PolicySet
from proxy.errors import ApiError
from proxy.ids import feedback_id
from proxy.learning import learn, polarity
from proxy.lesson_index import LessonIndex
from proxy.records import Feedback, Lesson
from proxy.storage import TrailDB
from proxy.storage.repo import encode_vector

log = logging.getLogger("loopwise.feedback")
Signal = Literal["regenerate", "rephrase", "abandon", "copy", "edit"]


class Scale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float = 0.0
    max: float = 1.0


class FeedbackIn(BaseModel):
    """The body of POST /v1/feedback."""

    model_config = ConfigDict(extra="forbid")

    interaction_id: str = Field(min_length=1, max_length=200)
    rating: Literal[-1, 1] | None = None
    score: float | None = None
    scale: Scale | None = None
    categories: list[str] = Field(default_factory=list, max_length=20)
    comment: str | None = Field(None, max_length=20_000)
    correction: str | None = Field(None, max_length=50_000)
    dimensions: dict[str, float] = Field(default_factory=dict, max_length=50)
    preferred_over: str | None = Field(None, max_length=200)
    signal: Signal | None = None
    source: Literal["user", "reviewer", "implicit"] = "user"
    user_id: str | None = Field(None, max_length=256)
    user_role: str | None = Field(None, max_length=256)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackIn:
        said = (
            self.rating,
            self.score,
            self.categories,
            self.comment,
            self.correction,
            self.dimensions,
            self.preferred_over,
            self.signal,
        )
        if not any(x not in (None, [], {}, "") for x in said):
            raise ValueError(
                "feedback needs at least one of rating, score, categories, comment, correction, "
                "dimensions, preferred_over, signal"
            )
        scale = self.scale or Scale()
        if scale.max <= scale.min:
            raise ValueError("scale.max must be greater than scale.min")
        if self.score is not None and not scale.min <= self.score <= scale.max:
            raise ValueError(f"score {self.score} is outside its scale [{scale.min}, {scale.max}]")
        return self

    def to_record(self) -> Feedback:
        return Feedback(
            id=feedback_id(),
            interaction_id=self.interaction_id,
            created_at=time.time(),
            source=self.source,
            user_id=self.user_id,
            user_role=self.user_role,
            rating=self.rating,
            score=self.score,
            score_min=self.scale.min if self.scale else None,
            score_max=self.scale.max if self.scale else None,
            categories=tuple(dict.fromkeys(c.strip() for c in self.categories)),
            comment=(self.comment or "").strip() or None,
            correction=(self.correction or "").strip() or None,
            dimensions=dict(self.dimensions),
            preferred_over=self.preferred_over,
            signal=self.signal,
            metadata=dict(self.metadata),
        )


def check_categories(categories: tuple[str, ...], taxonomy: tuple[str, ...]) -> None:
    unknown = [c for c in categories if c not in taxonomy]
    if unknown:
        raise ApiError(
            400,
            f"unknown feedback category {unknown[0]!r}; valid categories: {', '.join(taxonomy)}",
            param="categories",
            code="invalid_category",
        )


def _learn_config(policies: PolicySet, interaction: dict[str, Any]) -> tuple[LearnConfig | None, str | None]:
    """The policy that served the interaction decides; if it is gone, match again."""
    policy = policies.by_name(interaction["policy"]) if interaction.get("policy") else None
    if policy is None:
        policy = policies.select(
            MatchContext(interaction["app"], interaction["requested_model"], interaction.get("user_role"))
        )
    return (policy.policy.learn, policy.name) if policy else (None, None)


async def record_feedback(
    feedback: Feedback, db: TrailDB, policies: PolicySet, index: LessonIndex
) -> tuple[Feedback, Lesson | None]:
    """Store ``feedback`` (and its lesson) durably, then index the lesson. Raises ApiError 404."""
    await db.flush()
    interaction = await db.run(lambda repo: repo.get_interaction(feedback.interaction_id))
    if interaction is None:
        raise ApiError(
            404,
            f"no interaction {feedback.interaction_id!r}; send the `id` of a chat completion "
            "answered by this proxy",
            param="interaction_id",
            code="interaction_not_found",
        )
    if feedback.preferred_over is not None:
        other = await db.run(lambda repo: repo.get_interaction(feedback.preferred_over or ""))
        if other is None:
            raise ApiError(
                404,
                f"no interaction {feedback.preferred_over!r}",
                param="preferred_over",
                code="interaction_not_found",
            )
    learn_config, policy_name = _learn_config(policies, interaction)
    existing = await db.run(lambda repo: repo.lesson_for_interaction(feedback.interaction_id))
    lesson = learn(feedback, interaction, existing, learn_config, policy_name) if learn_config else None
    vector: list[float] | None = None
    if lesson is not None and existing is None:
        try:
            vector = await index.embedder.embed(lesson.question)
        except Exception:  # noqa: BLE001 - the index sync embeds it later
            vector = None
    embedding = (encode_vector(vector), index.embedder.model_id) if vector else None
    injected_ids = list(dict.fromkeys(i["lesson_id"] for i in interaction["injected"]))
    shadow_ids = list(dict.fromkeys(i["lesson_id"] for i in interaction.get("shadow") or ()))
    negative = polarity(feedback, learn_config.score_below if learn_config else 0.5)
    await db.run(
        lambda repo: repo.record_feedback(feedback, lesson, embedding, injected_ids, negative, shadow_ids)
    )
    if lesson is not None:
        try:
            if vector is not None:
                await index.add(lesson, vector)
                await db.run(lambda repo: repo.mark_indexed([(lesson.id, lesson.version)]))
            else:
                await index.sync(db)
        except Exception as exc:  # noqa: BLE001 - committed; the periodic sync retries
            log.warning("lesson %s stored but not indexed yet (%s); the sync retries", lesson.id, exc)
    stored = replace(feedback, lesson_id=lesson.id if lesson else None)
    return stored, lesson
