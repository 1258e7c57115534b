"""Learn: which feedback is negative, and how it becomes (or enriches) a lesson. Pure decisions:
no storage, no index; `proxy.learning.feedback` reads, calls these and writes in one transaction."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from policies import LearnConfig
from proxy.records import Feedback, Lesson, lesson_id

NEGATIVE_SIGNALS = ("regenerate", "abandon")


def polarity(feedback: Feedback, score_below: float = 0.5) -> bool | None:
    """True for negative feedback, False for positive, None when it says neither."""
    score = feedback.normalised_score
    if feedback.rating == -1 or feedback.categories or feedback.correction:
        return True
    if feedback.signal in NEGATIVE_SIGNALS:
        return True
    if score is not None:
        return score < score_below
    if feedback.rating == 1:
        return False
    return None


def teaches(feedback: Feedback, learn: LearnConfig) -> bool:
    """Whether this feedback should produce a lesson under the policy's `learn.from`."""
    sources = set(learn.from_)
    score = feedback.normalised_score
    return bool(
        ("rating" in sources and feedback.rating == -1)
        or ("categories" in sources and feedback.categories)
        or ("correction" in sources and feedback.correction)
        or ("score" in sources and score is not None and score < learn.score_below)
        or (feedback.signal is not None and feedback.signal in sources)
    )


def bump(lesson: Lesson, **changes: Any) -> Lesson:
    """A changed lesson with a new version, so the index sync picks it up."""
    return replace(lesson, version=lesson.version + 1, updated_at=time.time(), **changes)


def learn(
    feedback: Feedback,
    interaction: dict[str, Any],
    existing: Lesson | None,
    learn_config: LearnConfig,
    policy_name: str | None,
) -> Lesson | None:
    """A new lesson, the existing one enriched, or None when the feedback teaches nothing."""
    if not teaches(feedback, learn_config):
        return None
    if existing is not None:
        categories = tuple(dict.fromkeys((*existing.categories, *feedback.categories)))
        return bump(
            existing,
            feedback_ids=(*existing.feedback_ids, feedback.id),
            categories=categories,
            comment=feedback.comment or existing.comment,
            correction=feedback.correction or existing.correction,
        )
    now = time.time()
    return Lesson(
        id=lesson_id(),
        created_at=now,
        updated_at=now,
        status=learn_config.initial_status,
        app=interaction["app"],
        tenant=interaction.get("tenant"),
        user_id=interaction.get("user_id"),
        interaction_id=interaction["id"],
        feedback_ids=(feedback.id,),
        question=interaction["question"],
        bad_answer=interaction.get("response_text") or "",
        categories=feedback.categories,
        comment=feedback.comment or "",
        correction=feedback.correction or "",
        policy=policy_name,
    )
