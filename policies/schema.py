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
