"""The curated lesson set: one lesson per thing taught, with several trigger questions
(`storage/triggers`). A correction taught again in the same scope becomes another question of
the lesson that teaches it rather than a second lesson; a lesson's questions also grow from the
trail: the user's own rephrasing of the question that failed (the best paraphrase there is), and
a question on which the lesson was injected and the answer then drew positive feedback. A
question it was injected on and then corrected otherwise is kept too, as one it is wrong for.

A trigger is matched against, never shown: the injected note quotes the lesson's own question
and correction, so a question another user asked reaches no prompt. A question the screen would
hold (an injection, a link, personal data) is not added. Runs inside the feedback transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.learning.lessons import bump
from proxy.learning.screen import screen
from proxy.privacy import Redactor
from proxy.records import Feedback, Lesson, correction_key
from proxy.storage import TrailRepo, rows, triggers
from proxy.storage.repo import LESSON_COLUMNS

LIVE = ("active", "pending")  # a rejected or retired lesson takes no more questions


def teaching(repo: TrailRepo, lesson: Lesson, user_scoped: Callable[[Lesson], bool]) -> Lesson | None:
    """The live lesson of the same app and tenant that already teaches `lesson`'s correction
    (the same words, case and spacing aside: `correction_key`), the oldest first, of the status
    `lesson` would take (a clean question joining a lesson held for review would wait with it;
    measured: 10 of CLINC150's 150 intents lost their lesson that way); of the same user when
    either is recalled for its own user only (`user_scoped`); None without one."""
    key = correction_key(lesson.correction)
    if not key:
        return None
    found = repo.conn.execute(
        f"SELECT {LESSON_COLUMNS} FROM lessons WHERE app = ? AND tenant IS ? AND correction_key = ? "
        "AND status IN ('active', 'pending') ORDER BY created_at LIMIT 20",
        (lesson.app, lesson.tenant, key),
    )
    for into in rows.records(Lesson, found):
        if into.status != lesson.status:  # a held lesson keeps a clean one from going live, not so
            continue
        if into.user_id == lesson.user_id or not (user_scoped(into) or user_scoped(lesson)):
            return into
    return None


def merge(repo: TrailRepo, into: Lesson, new: Lesson) -> Lesson:
    """`new` (not saved) folded into `into`: its question a trigger, its feedback and categories
    kept. The caller saves the returned lesson."""
    triggers.add(repo.conn, into.id, new.question, "merged", new.interaction_id, into.question)
    categories = tuple(dict.fromkeys((*into.categories, *new.categories)))
    return bump(into, feedback_ids=(*into.feedback_ids, *new.feedback_ids), categories=categories)


def _grow(repo: TrailRepo, lesson: Lesson, question: str, source: str, interaction_id: str) -> bool:
    if lesson.status not in LIVE or screen([question]):
        return False
    if not triggers.add(repo.conn, lesson.id, question, source, interaction_id, lesson.question):
        return False
    repo.save_lesson(bump(lesson))
    return True


def rephrased(repo: TrailRepo, lesson: Lesson, interaction_id: str, redactor: Redactor) -> bool:
    """The questions that re-asked `interaction_id` in other words (its implicit `rephrase`
    feedback names them), added to its lesson."""
    # the proxy's own signal only (a client's metadata names what it likes), and only a turn of
    # the same session, app, tenant and user: nobody else's question joins this way
    found = repo.conn.execute(
        "SELECT i.id, i.question FROM feedback f JOIN interactions asked ON asked.id = f.interaction_id "
        "JOIN interactions i ON i.id = json_extract(f.metadata_json, '$.rephrased_by') "
        "WHERE f.interaction_id = ? AND f.signal = 'rephrase' AND f.source = 'implicit' "
        "AND asked.session_id IS NOT NULL AND i.session_id = asked.session_id AND i.app = asked.app "
        "AND coalesce(i.tenant, '') = coalesce(asked.tenant, '') "
        "AND coalesce(i.user_id, '') = coalesce(asked.user_id, '') ORDER BY f.created_at",
        (interaction_id,),
    ).fetchall()
    grew = False
    for again, question in found:
        current = repo.get_lesson(lesson.id)
        if current is not None:
            grew = _grow(repo, current, redactor.redact(question or ""), "rephrase", again) or grew
    return grew


ACCEPT_SCORE = 0.7  # the least similarity of a turn whose question joins the lesson it accepted


def _only_injected(repo: TrailRepo, interaction: dict[str, Any]) -> tuple[Lesson, float] | None:
    """The active lesson injected on the turn and its score, when it was the only one: with
    more than one, which one the feedback is about is not known."""
    injected: list[dict[str, Any]] = list(interaction.get("injected") or ())
    if len({i["lesson_id"] for i in injected}) != 1:
        return None
    lesson = repo.get_lesson(injected[0]["lesson_id"])
    if lesson is None or lesson.status != "active":
        return None
    return lesson, max(float(i.get("score") or 0.0) for i in injected)


def accepted(repo: TrailRepo, feedback: Feedback, interaction: dict[str, Any]) -> bool:
    """Positive feedback on a turn that had one lesson injected, and close to it (ACCEPT_SCORE:
    the shipped threshold plus its margin): its question (redacted by the caller) joins the
    lesson. A turn that matched only just could, step by step, walk a lesson towards questions
    it does not answer."""
    if feedback.negative is not False or feedback.preferred_over is not None:
        return False
    found = _only_injected(repo, interaction)
    if found is None or found[1] < ACCEPT_SCORE:
        return False
    return _grow(repo, found[0], interaction["question"], "accepted", interaction["id"])


def misfired(repo: TrailRepo, feedback: Feedback, interaction: dict[str, Any], trusted: bool) -> bool:
    """A correction that differs from the one lesson injected on the turn, from a trusted
    sender (a reviewer, a trusted role): the lesson was wrong for this question, which joins it
    as a question `against` (recall keeps it away from turns nearer this one than any of its own
    questions). From anyone else it only counts against the lesson: one untrusted sender could
    otherwise take a good lesson away from everybody. Negative feedback without a correction
    only counts too: the answer may have failed for another reason."""
    if not (trusted and feedback.negative and feedback.correction):
        return False
    found = _only_injected(repo, interaction)
    if found is None or correction_key(found[0].correction) == correction_key(feedback.correction):
        return False
    return _grow(repo, found[0], interaction["question"], "against", interaction["id"])
