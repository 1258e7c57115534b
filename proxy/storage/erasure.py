"""Erasure: everything a user left (`DELETE /v1/users/{id}`, `loopwise users delete`), and what is
older than the retention period. Interactions, the feedback on them or by them, and the lessons
drawn from either go together; the caller removes the returned lessons (`lesson_ids`) and the
trigger questions that left lessons which stay (`trigger_points`) from the vector index."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from proxy.records import EVERYTHING, Visibility
from proxy.storage import preferences, rollups, triggers
from proxy.storage.repo import TrailRepo, visible

_SETS = ("gone_interactions", "gone_feedback", "gone_lessons")
Clause = tuple[str, list[Any]]  # a WHERE condition and its parameters


def _fill(repo: TrailRepo, interactions: Clause, feedback: Clause, lessons: Clause) -> None:
    """Collect the ids to erase: the rows each clause selects, and what depends on them."""
    conn = repo.conn
    for table in _SETS:
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY)")
        conn.execute(f"DELETE FROM {table}")
    where, params = interactions
    conn.execute(f"INSERT INTO gone_interactions SELECT id FROM interactions WHERE {where}", params)
    conn.execute(
        "INSERT INTO gone_feedback SELECT id FROM feedback WHERE "
        f"interaction_id IN (SELECT id FROM gone_interactions) OR ({feedback[0]})",
        feedback[1],
    )
    # feedback that only joined a lesson teaching the same correction (`learning/curation`): its
    # words there are its question alone, a trigger, so it leaves the lesson and the lesson stays
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS joined_feedback (id TEXT PRIMARY KEY)")
    conn.execute("DELETE FROM joined_feedback")
    conn.execute(  # a feedback names its own turn's lesson, unless it joined another's
        "INSERT INTO joined_feedback SELECT f.id FROM feedback f JOIN lessons l ON l.id = f.lesson_id "
        "WHERE f.id IN (SELECT id FROM gone_feedback) AND l.interaction_id != f.interaction_id"
    )
    conn.execute(  # a lesson holding a gone feedback, also through a reviewer's merge, carries its words
        "INSERT INTO gone_lessons SELECT id FROM lessons WHERE "
        "interaction_id IN (SELECT id FROM gone_interactions) OR id IN "
        "(SELECT lesson_id FROM feedback WHERE id IN (SELECT id FROM gone_feedback) "
        f"AND id NOT IN (SELECT id FROM joined_feedback)) OR ({lessons[0]}) "
        "OR EXISTS (SELECT 1 FROM json_each(lessons.feedback_ids_json) j WHERE j.value IN "
        "(SELECT id FROM gone_feedback) AND j.value NOT IN (SELECT id FROM joined_feedback))",
        lessons[1],
    )


def _erase(repo: TrailRepo) -> dict[str, Any]:
    conn = repo.conn
    lessons = [row[0] for row in conn.execute("SELECT id FROM gone_lessons")]
    counts = {t.removeprefix("gone_"): conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _SETS}
    conn.execute(
        "UPDATE feedback SET lesson_id = NULL WHERE lesson_id IN (SELECT id FROM gone_lessons) "
        "AND id NOT IN (SELECT id FROM gone_feedback)"
    )
    conn.execute(
        "UPDATE feedback SET preferred_over = NULL WHERE preferred_over IN (SELECT id FROM gone_interactions)"
    )
    conn.execute(  # other users' turns that carried an erased lesson: drop the messages it was in
        "UPDATE interactions SET sent_messages_json = '[]' "
        "WHERE id NOT IN (SELECT id FROM gone_interactions) AND EXISTS (SELECT 1 FROM "
        "json_each(injected_json) j WHERE json_extract(j.value, '$.lesson_id') IN "
        "(SELECT id FROM gone_lessons))"
    )
    rollups.mark(  # the buckets that lose interactions or verdicts, recounted after the deletes
        conn,
        "SELECT id FROM gone_interactions UNION "
        "SELECT interaction_id FROM feedback WHERE id IN (SELECT id FROM gone_feedback)",
    )
    conn.execute(
        "DELETE FROM injections WHERE interaction_id IN (SELECT id FROM gone_interactions) "
        "OR lesson_id IN (SELECT id FROM gone_lessons)"
    )
    points = _leave_lessons(repo)
    conn.execute(
        "DELETE FROM lesson_triggers WHERE lesson_id IN (SELECT id FROM gone_lessons) "
        "OR interaction_id IN (SELECT id FROM gone_interactions)"
    )
    conn.execute("DELETE FROM feedback WHERE id IN (SELECT id FROM gone_feedback)")
    conn.execute("DELETE FROM lessons WHERE id IN (SELECT id FROM gone_lessons)")
    conn.execute("DELETE FROM interactions WHERE id IN (SELECT id FROM gone_interactions)")
    rollups.rebuild_marked(conn)
    return {**counts, "lesson_ids": lessons, "trigger_points": points}


def _drop_learned_from(repo: TrailRepo, user_id: str) -> int:
    """The user's preferences learned from feedback that goes (a key bound to apps erases a
    user's rows in its apps; a preference for every app learned there goes with them). Only
    the user's own rows can hold their feedback: only the answered user's feedback teaches."""
    gone = repo.conn.execute(
        "DELETE FROM preferences WHERE user_id = ? AND EXISTS (SELECT 1 FROM "
        "json_each(preferences.evidence_json) j WHERE json_extract(j.value, '$.feedback_id') IN "
        "(SELECT id FROM gone_feedback))",
        (user_id,),
    )
    return int(gone.rowcount or 0)


def _leave_lessons(repo: TrailRepo) -> list[str]:
    """A trigger question the gone interactions asked, and the feedback that joined a lesson
    with it, leave the lessons that stay (also those a reviewer merged it into); each takes a
    new version, so every index follows. Returns the index points of the triggers that go."""
    conn = repo.conn
    staying = [
        row[0]
        for row in conn.execute(
            "SELECT id FROM lessons WHERE id NOT IN (SELECT id FROM gone_lessons) AND ("
            "id IN (SELECT lesson_id FROM lesson_triggers "
            "WHERE interaction_id IN (SELECT id FROM gone_interactions)) "
            "OR EXISTS (SELECT 1 FROM json_each(lessons.feedback_ids_json) j "
            "WHERE j.value IN (SELECT id FROM joined_feedback)))"
        )
    ]
    points = [
        triggers.point_id(row[0], int(row[1]))
        for row in conn.execute(
            "SELECT lesson_id, slot FROM lesson_triggers "
            "WHERE interaction_id IN (SELECT id FROM gone_interactions) "
            "AND lesson_id NOT IN (SELECT id FROM gone_lessons)"
        )
    ]
    joined = {row[0] for row in conn.execute("SELECT id FROM joined_feedback")}
    for lesson_id in staying:
        lesson = repo.get_lesson(lesson_id)
        if lesson is not None:
            kept = tuple(f for f in lesson.feedback_ids if f not in joined)
            repo.save_lesson(replace(lesson, version=lesson.version + 1, feedback_ids=kept))
    return points


def delete_user(repo: TrailRepo, user_id: str, visibility: Visibility = EVERYTHING) -> dict[str, Any]:
    """The user's interactions (in the apps and tenant `visibility` allows), the feedback on them
    and the feedback they gave, and every lesson drawn from any of it."""
    where, params = visible(visibility)
    with repo.transaction():
        mine = (f"user_id = ? AND {where}", [user_id, *params])
        given = (f"user_id = ? AND interaction_id IN (SELECT id FROM interactions WHERE {where})", mine[1])
        _fill(repo, mine, given, mine)
        profile = preferences.forget(repo.conn, user_id, visibility) + _drop_learned_from(repo, user_id)
        return {**_erase(repo), "preferences": profile}


def purge_before(repo: TrailRepo, cutoff: float) -> dict[str, Any]:
    """Everything created before `cutoff` (a Unix time)."""
    with repo.transaction():
        older = ("created_at < ?", [cutoff])
        _fill(repo, older, older, older)
        profile = preferences.purge_before(repo.conn, cutoff)
        return {**_erase(repo), "preferences": profile}
