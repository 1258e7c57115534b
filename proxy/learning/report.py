"""`loopwise report` and GET /v1/report: is feedback getting better, and which lessons help;
and retiring those that do not, for policies that ask for it."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from policies import PolicySet
from policies.schema import RetireConfig
from proxy.learning.effect import compare, lesson_effect, rate, retire_reason
from proxy.records import EVERYTHING, Lesson, Visibility
from proxy.storage.repo import TrailRepo
from proxy.storage.report_queries import (
    BUCKETS,
    arms,
    asked_for_feedback,
    by_category,
    by_dimensions,
    window_start,
)

MAX_LESSONS = 200
log = logging.getLogger("loopwise.retire")


def retire_config(policies: PolicySet | None, lesson: Lesson) -> tuple[RetireConfig, bool]:
    """The retire thresholds of the lesson's policy, and whether that policy retires by itself."""
    policy = policies.by_name(lesson.policy) if policies is not None and lesson.policy else None
    config = policy.spec.retire if policy is not None else RetireConfig()
    return config, config.enabled


def _with_rate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "negative_rate": rate(row["negative"], row["interactions"])} for row in rows]


def _arms(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    per_policy: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        per_policy.setdefault(row["policy"], {})[row["arm"]] = row
    out = []
    for policy, found in per_policy.items():
        treated = found.get("treatment", {"interactions": 0, "negative": 0})
        control = found.get("control", {"interactions": 0, "negative": 0})
        effect = compare(
            treated["interactions"], treated["negative"], control["interactions"], control["negative"]
        )
        out.append({"policy": policy, **effect.as_dict()})
    return out


def _lesson(lesson: Lesson, policies: PolicySet | None) -> dict[str, Any]:
    config, automatic = retire_config(policies, lesson)
    return {
        "id": lesson.id,
        "app": lesson.app,
        "policy": lesson.policy,
        "question": lesson.question,
        "categories": list(lesson.categories),
        "effect": lesson_effect(lesson).as_dict(),
        "retire": retire_reason(lesson, config),
        "retired_automatically": automatic,
    }


def build_report(
    repo: TrailRepo,
    policies: PolicySet | None,
    days: float = 30,
    bucket: str = "day",
    visibility: Visibility = EVERYTHING,
    only: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report over what `visibility` allows (a key sees its own apps and tenant only);
    `only`: the turns of one environment or model version (`report_queries.FILTERS`)."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}")
    since = window_start(time.time() - days * 86400, bucket)  # whole hours or days, as the cells
    series = {d: _with_rate(rows) for d, rows in by_dimensions(repo, since, bucket, visibility, only).items()}
    interactions = sum(row["interactions"] for row in series["app"])
    negative = sum(row["negative"] for row in series["app"])
    lessons = [_lesson(lesson, policies) for lesson in repo.judged_lessons(1, visibility, MAX_LESSONS)]
    return {
        "since": since,
        "days": days,
        "bucket": bucket,
        "totals": {
            "interactions": interactions,
            "with_feedback": sum(row["with_feedback"] for row in series["app"]),
            "negative": negative,
            "negative_rate": rate(negative, interactions),
        },
        "negative_rate": {
            **series,
            "category": _with_rate(by_category(repo, since, bucket, visibility, only)),
        },
        "treatment_vs_control": _arms(arms(repo, since, visibility, only)),
        "feedback_wanted": _asking(asked_for_feedback(repo, since, visibility, only), interactions),
        "lessons": lessons,
        "retire_candidates": [item for item in lessons if item["retire"]],
    }


def _asking(rows: list[dict[str, Any]], interactions: int) -> list[dict[str, Any]]:
    """Each reason's row, and `unrequested` for the rest, with the lesson decisions (lessons
    made, joined and grown, and verdicts on an injected lesson: one feedback may do several)
    per request and per feedback: what asking for feedback bought, reason by reason."""
    out = []
    for row in rows:
        asked = row["asked"] if row["reason"] else max(0, interactions - sum(r["asked"] for r in rows))
        decisions = (
            row["lessons_made"] + row["lessons_joined"] + row["lessons_grown"] + row["lesson_verdicts"]
        )
        out.append(
            {
                **row,
                "reason": row["reason"] or "unrequested",
                "asked": asked,
                "decisions": decisions,
                "decisions_per_request": round(decisions / asked, 3) if asked else None,
                "decisions_per_feedback": round(decisions / row["answered"], 3) if row["answered"] else None,
            }
        )
    return out


def retire_unhelpful(repo: TrailRepo, policies: PolicySet) -> list[tuple[str, str]]:
    """Retire each active lesson its policy's thresholds condemn; returns (id, reason) pairs."""
    thresholds = [p.spec.retire.min_injections for p in policies.policies if p.spec.retire.enabled]
    if not thresholds:
        return []
    retired = []
    for lesson in repo.judged_lessons(min(thresholds)):
        config, automatic = retire_config(policies, lesson)
        reason = retire_reason(lesson, config) if automatic else None
        if reason:
            repo.set_lesson_status(lesson.id, "retired", f"auto-retired: {reason}", by_person=False)
            log.info("retired lesson %s: %s", lesson.id, reason)
            retired.append((lesson.id, reason))
    return retired
