"""What a reviewer does to lessons beyond a status: edit what one teaches, merge two that teach
the same thing. Both run as one transaction on the trail DB's thread; the index sync follows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from policies import PolicySet
from proxy.errors import ApiError
from proxy.learning.lessons import bump
from proxy.learning.screen import screen
from proxy.privacy import NO_REDACTION, Redactor
from proxy.records import EVERYTHING, Lesson, LessonStatus, Visibility
from proxy.storage import TrailRepo, triggers

MAX_CORRECTION, MAX_COMMENT = 50_000, 20_000  # as for feedback: the text reaches prompts
STATUS_ACTIONS: dict[str, LessonStatus] = {"approve": "active", "reject": "rejected", "retire": "retired"}
ACTIONS = (*STATUS_ACTIONS, "edit", "merge")


@dataclass(frozen=True)
class Review:
    """What a reviewer asks of one lesson (the API's body, or a console form)."""

    action: str
    note: str | None = None
    correction: str | None = None  # edit
    comment: str | None = None  # edit
    into: str | None = None  # merge: the lesson that stays


def per_user(policies: PolicySet, lesson: Lesson) -> bool:
    """Whether a lesson is recalled for its own user only (its policy's `recall.scope: user`; a
    policy gone since counts as such)."""
    policy = policies.by_name(lesson.policy) if lesson.policy else None
    return policy is None or policy.spec.recall.scope == "user"


def review(
    repo: TrailRepo,
    lesson_id: str,
    asked: Review,
    visibility: Visibility,
    redactor: Redactor,
    policies: PolicySet,
) -> Lesson:
    """Do what `asked` says to a lesson `visibility` allows; the lesson it leaves (for a merge,
    the one kept). 404 for one out of sight, as for a missing one."""
    if asked.action in STATUS_ACTIONS:
        done = repo.set_lesson_status(
            lesson_id, STATUS_ACTIONS[asked.action], asked.note, visibility=visibility
        )
        if done is None:
            raise _missing(lesson_id)
        return done
    if asked.action == "edit":
        if asked.correction is None and asked.comment is None:
            raise ApiError(400, "edit takes a correction, a comment or both", param="correction")
        return edit_lesson(repo, lesson_id, asked.correction, asked.comment, visibility, redactor)
    if asked.action == "merge":
        if not asked.into:
            raise ApiError(400, "merge takes `into`: the id of the lesson that stays", param="into")
        return merge_lessons(repo, asked.into, lesson_id, visibility, lambda x: per_user(policies, x))[0]
    raise ApiError(404, f"unknown lesson action {asked.action!r}; valid: {', '.join(ACTIONS)}")


def _missing(lesson_id: str, param: str = "lesson_id") -> ApiError:
    return ApiError(404, f"no lesson {lesson_id!r}", param=param, code="lesson_not_found")


def edit_lesson(
    repo: TrailRepo,
    lesson_id: str,
    correction: str | None,
    comment: str | None,
    visibility: Visibility = EVERYTHING,
    redactor: Redactor = NO_REDACTION,
) -> Lesson:
    """A reviewer's own words for the correction and the comment (None leaves one as it was).
    The reviewer vouches for them, so they pass no screen; the status stays as it was (approve
    to make a pending lesson live). Personal data is redacted as in any lesson."""
    for given, most, name in ((correction, MAX_CORRECTION, "correction"), (comment, MAX_COMMENT, "comment")):
        if given is not None and len(given) > most:
            raise ApiError(400, f"{name} is longer than {most} characters", param=name)
    with repo.transaction():
        lesson = repo.get_lesson(lesson_id, visibility)
        if lesson is None:
            raise _missing(lesson_id)
        changes: dict[str, str] = {}
        if correction is not None:
            changes["correction"] = redactor.redact(correction.strip())
        if comment is not None:
            changes["comment"] = redactor.redact(comment.strip())
        if not changes.get("correction", lesson.correction) and not changes.get("comment", lesson.comment):
            raise ApiError(400, "a lesson needs a correction or a comment to teach", param="correction")
        edited = bump(lesson, **changes)
        repo.save_lesson(edited)
    return edited


def merge_lessons(
    repo: TrailRepo,
    keep_id: str,
    merged_id: str,
    visibility: Visibility = EVERYTHING,
    user_scoped: Callable[[Lesson], bool] = lambda lesson: True,
) -> tuple[Lesson, Lesson]:
    """`merged_id` folded into `keep_id`: the kept lesson takes the other's provenance (feedback)
    and categories, its question and trigger questions as triggers (`storage/triggers`: matched,
    never shown), and, from a live (active) one only, its correction or comment where it has
    none; the other is retired with a note naming the kept one. Both must be of one app and
    tenant, and, where either is recalled for its own user only (`user_scoped`), of one user: no
    user's words reach another's prompts this way, and no held text goes live without an
    approval. Returns (kept, retired)."""
    if keep_id == merged_id:
        raise ApiError(400, "a lesson cannot be merged into itself", param="into")
    with repo.transaction():
        keep = repo.get_lesson(keep_id, visibility)
        merged = repo.get_lesson(merged_id, visibility)
        if keep is None:
            raise _missing(keep_id, "into")
        if merged is None:
            raise _missing(merged_id)
        if (keep.app, keep.tenant) != (merged.app, merged.tenant):
            raise ApiError(400, "only lessons of one app and tenant can be merged", param="into")
        if keep.user_id != merged.user_id and (user_scoped(keep) or user_scoped(merged)):
            raise ApiError(
                400, "these lessons are recalled for their own users: merge one user's only", param="into"
            )
        if merged.status == "retired" and (merged.review_note or "").startswith("merged into"):
            raise ApiError(409, f"lesson {merged_id} was merged already", code="lesson_merged")
        live = merged.status == "active"
        kept = bump(
            keep,
            feedback_ids=tuple(dict.fromkeys((*keep.feedback_ids, *merged.feedback_ids))),
            categories=tuple(dict.fromkeys((*keep.categories, *merged.categories))),
            correction=keep.correction or (merged.correction if live else ""),
            comment=keep.comment or (merged.comment if live else ""),
        )
        repo.save_lesson(kept)
        # where the merged one fired (and where it was wrong) the kept one does now; a question
        # the screen would hold does not come along
        held = triggers.of(repo.conn, [merged_id]).get(merged_id, [])
        moved: list[tuple[str, str, str | None]] = [(merged.question, "merged", merged.interaction_id)]
        moved += [(t.question, t.source, t.interaction_id) for t in held]
        for question, source, interaction in moved:
            if not screen([question]):
                triggers.add(repo.conn, keep_id, question, source, interaction, keep.question)
        retired = repo.set_lesson_status(
            merged_id, "retired", f"merged into {keep_id}", visibility=visibility
        )
    assert retired is not None  # seen above, in the same transaction
    return kept, retired
