"""What a reviewer does to lessons beyond a status: edit what one teaches, merge two that teach
the same thing. Both run as one transaction on the trail DB's thread; the index sync follows."""

from __future__ import annotations

from proxy.errors import ApiError
from proxy.learning.lessons import bump
from proxy.privacy import NO_REDACTION, Redactor
from proxy.records import EVERYTHING, Lesson, Visibility
from proxy.storage import TrailRepo


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
    repo: TrailRepo, keep_id: str, merged_id: str, visibility: Visibility = EVERYTHING
) -> tuple[Lesson, Lesson]:
    """`merged_id` folded into `keep_id`: the kept lesson takes the other's provenance (feedback)
    and categories, and its correction or comment where it has none; the other is retired with
    a note naming the kept one. Both must be of one app and tenant. Returns (kept, retired)."""
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
        if merged.status == "retired" and (merged.review_note or "").startswith("merged into"):
            raise ApiError(409, f"lesson {merged_id} was merged already", code="lesson_merged")
        kept = bump(
            keep,
            feedback_ids=tuple(dict.fromkeys((*keep.feedback_ids, *merged.feedback_ids))),
            categories=tuple(dict.fromkeys((*keep.categories, *merged.categories))),
            correction=keep.correction or merged.correction,
            comment=keep.comment or merged.comment,
        )
        repo.save_lesson(kept)
        retired = repo.set_lesson_status(
            merged_id, "retired", f"merged into {keep_id}", visibility=visibility
        )
    assert retired is not None  # seen above, in the same transaction
    return kept, retired
