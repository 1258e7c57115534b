"""The policy schema: what a YAML policy file may say, validated strictly."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

LessonSource = Literal["rating", "categories", "correction", "score", "regenerate", "rephrase", "abandon"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Which requests a policy applies to. Empty lists match anything; `*` globs work."""

    apps: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    user_roles: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)


class RecallConfig(_Strict):
    enabled: bool = True
    top_k: int = Field(3, ge=1, le=50)
    min_score: float = Field(0.62, ge=-1.0, le=1.0)
    min_margin: float = Field(
        0.08,
        ge=0.0,
        le=1.0,
        description=(
            "the best correction must beat the next by this much (else nothing is injected); "
            "with a margin, only the best correction is injected"
        ),
    )
    scope: Literal["app", "user"] = "app"
    timeout_ms: int = Field(150, ge=1, le=10_000)
    gate_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="the cheap stage's threshold: a turn whose windows' predicted similarity to "
        "every lesson is below it skips the model (no lesson); null: calibrated as the proxy runs "
        "to keep 99.5% of the turns the model would match; -1: the model runs on every turn",
    )


class LearnConfig(_Strict):
    """How feedback becomes a lesson."""

    from_: tuple[LessonSource, ...] = Field(
        ("rating", "categories", "correction", "score", "regenerate"), alias="from"
    )
    score_below: float = Field(0.5, ge=0.0, le=1.0, description="normalised score threshold")
    review: Literal["screen", "auto", "manual"] = Field(
        "screen",
        description="screen: active unless an untrusted user's text looks like an injection, a link or "
        "personal data (then pending); auto: always active; manual: always pending",
    )
    corroborate_users: int = Field(
        3, ge=2, description="this many distinct users giving the same correction lift a link-like hold"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetireConfig(_Strict):
    """When a lesson that does not help is retired without a person (off by default)."""

    enabled: bool = False
    min_injections: int = Field(20, ge=1, description="judge a lesson only after this many injections")
    max_negative_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="retire when this share of its injected turns drew negative feedback"
    )
    versus_control: bool = Field(
        True, description="also retire when it does worse than its control arm with 95% confidence"
    )


class PreferencesConfig(_Strict):
    """Which feedback teaches the user rather than the app: a user's own feedback on the form of
    an answer (too long, too formal, ...) updates that user's profile, which the `preferences`
    injector adds to that user's requests only."""

    learn: bool = Field(True, description="a user's feedback on form updates their profile")
    categories: tuple[str, ...] = Field(
        ("too_long", "too_short", "too_formal", "too_casual", "wrong_tone"),
        description="categories that teach the user: feedback saying only these (no correction) "
        "makes no lesson for the app when it says which way the user wants the answer to go",
    )
    scope: Literal["user", "app"] = Field(
        "user", description="user: one profile for the user across apps; app: one per app"
    )


FeedbackReason = Literal[
    "ambiguous-match", "new-lesson", "contradicts-correction", "low-confidence", "sampled"
]
FEEDBACK_REASONS: tuple[FeedbackReason, ...] = (
    "ambiguous-match",
    "new-lesson",
    "contradicts-correction",
    "low-confidence",
    "sampled",
)


class FeedbackWantedConfig(_Strict):
    """When an answer tells the app that feedback on it would teach the most
    (`X-Loopwise-Feedback-Wanted`), within a budget per session and per user."""

    reasons: tuple[FeedbackReason, ...] = Field(
        ("ambiguous-match", "new-lesson", "contradicts-correction", "low-confidence"),
        description="the reasons this policy may give, in order of preference",
    )
    sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="`sampled`: the share of other turns asked at random"
    )
    band: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="`ambiguous-match`: a best match this far below min_score is near the boundary",
    )
    unproven_below: int = Field(
        5,
        ge=1,
        le=100,
        description="`new-lesson`: a lesson judged (feedback after its injection) fewer times than this",
    )
    min_logprob: float = Field(
        -1.0,
        le=0.0,
        description="`low-confidence`: the answer's mean token logprob below this (when asked for)",
    )
    per_session: int = Field(1, ge=0, description="most requests for feedback in one session")
    per_user_per_day: int = Field(3, ge=0, description="most requests for feedback to one user in 24 hours")


class InjectorSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class PolicySpec(_Strict):
    """One policy as its YAML says it; `policies.matcher.Policy` is the loaded form."""

    name: str = Field(min_length=1)
    description: str = ""
    match: Match = Match()
    recall: RecallConfig = RecallConfig()
    injectors: tuple[InjectorSpec, ...] = ()
    budget_tokens: int = Field(800, ge=0)
    learn: LearnConfig = LearnConfig()
    retire: RetireConfig = RetireConfig()
    preferences: PreferencesConfig = PreferencesConfig()
    feedback_wanted: FeedbackWantedConfig | None = Field(
        None, description="when answers ask for feedback; null: never"
    )
    holdout: float = Field(0.0, ge=0.0, le=1.0, description="share of sessions left untreated")
    strict: bool = Field(False, description="fail the request when an injector raises")

    @field_validator("injectors", mode="before")
    @classmethod
    def _bare_or_mapping(cls, value: Any) -> Any:
        """Accept `- guidance` and `- corrections: {max_lessons: 2}` (one key each)."""
        if not isinstance(value, list):
            return value
        specs: list[Any] = []
        for item in value:
            if isinstance(item, str):
                specs.append({"name": item})
            elif isinstance(item, dict) and len(item) == 1 and "name" not in item:
                ((name, params),) = item.items()
                specs.append({"name": name, "params": params if params is not None else {}})
            else:
                specs.append(item)
        return specs


class PolicyFile(_Strict):
    policies: tuple[PolicySpec, ...] = Field(min_length=1)
