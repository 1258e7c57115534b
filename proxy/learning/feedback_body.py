"""The body of POST /v1/feedback, checked: what a sender may say about an answer."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from proxy.errors import ApiError
from proxy.records import Feedback, feedback_id

Signal = Literal["regenerate", "rephrase", "abandon", "copy", "edit"]
# metadata the proxy's own signals write (which turn re-asked or rephrased this one): a client
# naming them could pull another turn's question into a lesson, or pair answers it never saw
RESERVED_METADATA = ("regenerated_by", "rephrased_by")


def _without_nul(value: Any) -> Any:
    """NUL as U+FFFD, as in every stored text: PostgreSQL's JSON cannot hold it."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _client_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = _without_nul({k: v for k, v in metadata.items() if k not in RESERVED_METADATA})
    return kept


class Scale(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min: float = 0.0
    max: float = 1.0


class SpanIn(BaseModel):
    """A part of the answer marked wrong, in Unicode code points of the answer's text."""

    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=0, le=10_000_000)
    end: int = Field(ge=1, le=10_000_000)
    text: str | None = Field(None, max_length=50_000)  # what the sender saw there: checked
    correction: str | None = Field(None, max_length=50_000)  # what it should have said

    @model_validator(mode="after")
    def _ordered(self) -> SpanIn:
        if self.end <= self.start:
            raise ValueError("span.end must be greater than span.start")
        return self


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
    span: SpanIn | None = None  # a part of the answer marked wrong: negative, a rating of -1

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
            self.span,
        )
        if self.span is not None and self.rating == 1:
            raise ValueError("a span marks what is wrong in the answer; it cannot go with rating 1")
        if not any(x not in (None, [], {}, "") for x in said):
            raise ValueError(
                "feedback needs at least one of rating, score, categories, comment, correction, "
                "dimensions, preferred_over, signal, span"
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
            rating=-1 if self.span is not None else self.rating,
            score=self.score,
            score_min=self.scale.min if self.scale else None,
            score_max=self.scale.max if self.scale else None,
            categories=tuple(dict.fromkeys(c.strip() for c in self.categories)),
            comment=(self.comment or "").strip() or None,
            correction=(self.correction or "").strip() or None,
            dimensions=_without_nul(dict(self.dimensions)),
            preferred_over=self.preferred_over,
            signal=self.signal,
            metadata=_client_metadata(self.metadata),
            span=_without_nul(self.span.model_dump()) if self.span else None,
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
