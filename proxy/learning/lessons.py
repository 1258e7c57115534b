"""Learn: which feedback is negative, and how it becomes (or enriches) a lesson. Pure decisions:
no storage, no index; `proxy.learning.feedback` reads, calls these and writes in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from policies import LearnConfig
from proxy.records import Feedback, Lesson, LessonStatus, lesson_id

# The user asked again (the same turn re-sent, or said again in other words) or left mid-answer.
NEGATIVE_SIGNALS = ("regenerate", "rephrase", "abandon")


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


def answered_in_text(interaction: dict[str, Any]) -> bool:
    """The answer has text and calls no tool: an agent's tool call is a step, not an answer a
    signal can judge (its follow-up, re-sent with the tool result, reads like a repeat)."""
    if not (interaction.get("response_text") or "").strip():
        return False
    response = interaction.get("response")
    choices = response.get("choices") if isinstance(response, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and (message.get("tool_calls") or message.get("function_call")):
            return False
    return True


def bump(lesson: Lesson, **changes: Any) -> Lesson:
    """A changed lesson with a new version, so the index sync picks it up."""
    return replace(lesson, version=lesson.version + 1, updated_at=time.time(), **changes)


# Holds that several users saying the same thing may lift; the others always need a reviewer.
LIFTABLE = frozenset({"link or address", "unusually long"})


@dataclass(frozen=True)
class Vetting:
    """What is known about the text a lesson would carry to other users once this feedback is in."""

    held: tuple[str, ...] = ()  # the screen's reasons to hold it (a trusted sender's words exempt)
    corroborated: bool = False  # enough distinct users gave the same correction
    untrusted_text: bool = False  # this feedback brings new text from an untrusted sender


def status_for(config: LearnConfig, vetting: Vetting, current: LessonStatus | None) -> LessonStatus:
    """The status a new or enriched lesson takes under the policy's `review` mode. A rejected or
    retired lesson stays so; anything held waits for a reviewer, unless the policy says `auto`."""
    if config.review == "auto":
        return "active" if current in (None, "pending") else current
    if current in ("rejected", "retired"):
        return current
    if vetting.held and not (vetting.corroborated and set(vetting.held) <= LIFTABLE):
        return "pending"
    if config.review == "manual":  # new text from the public waits for a person, approved or not
        return "pending" if current is None or vetting.untrusted_text else current
    return "active"


def _held_note(vetting: Vetting) -> str | None:
    return f"held by the screen: {', '.join(vetting.held)}" if vetting.held else None


def learn(
    feedback: Feedback,
    interaction: dict[str, Any],
    existing: Lesson | None,
    learn_config: LearnConfig,
    policy_name: str | None,
    vetting: Vetting = Vetting(),
) -> Lesson | None:
    """A new lesson, the existing one enriched, or None when the feedback teaches nothing.
    Untrusted text the screen holds puts the lesson (even an active one) back to `pending`.
    An implicit signal alone never starts a lesson without something to teach: with no
    correction, the answer must be text (not empty, not a tool call)."""
    if not teaches(feedback, learn_config):
        return None
    implicit = feedback.source == "implicit" and not feedback.correction
    if existing is None and implicit and not answered_in_text(interaction):
        return None
    status = status_for(learn_config, vetting, existing.status if existing else None)
    note = _held_note(vetting) if status == "pending" else None
    if existing is not None:
        categories = tuple(dict.fromkeys((*existing.categories, *feedback.categories)))
        return bump(
            existing,
            status=status,
            review_note=note or existing.review_note,
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
        status=status,
        review_note=note,
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
