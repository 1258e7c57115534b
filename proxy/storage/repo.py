"""SQL for the trail, synchronous: the async TrailDB and the CLI both run these methods.

Each write method joins the caller's transaction when one is open (`repo.transaction()`), so a
read-decide-write sequence such as recording feedback commits as one unit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from proxy.records import EVERYTHING, Feedback, Interaction, Lesson, LessonStatus, Visibility, correction_key
from proxy.storage import rollups, rows
from proxy.storage.db import Connection, transaction
from proxy.storage.rows import Fields

LESSON_COLUMNS = rows.column_list(Lesson)
INSERT_INJECTION = (
    "INSERT INTO injections (lesson_id, interaction_id, created_at, injected) VALUES (?, ?, ?, ?)"
)
FEEDBACK_COLUMNS = rows.column_list(Feedback)
# What enriching a lesson may change; its effect counters move only by their own statements.
LEARNED_COLUMNS = (
    "updated_at",
    "status",
    "feedback_ids_json",
    "categories_json",
    "comment",
    "correction",
    "version",
    "review_note",
    "correction_key",
)


def visible(visibility: Visibility, table: str = "", blank_tenant: bool = False) -> tuple[str, list[Any]]:
    """A WHERE condition (and its parameters) that keeps the rows `visibility` allows; with
    `blank_tenant`, for a table that writes no tenant as '' (the rollups), not NULL."""
    column = f"{table}." if table else ""
    clauses: list[str] = []
    params: list[Any] = []
    if visibility.apps is not None:
        matches = " OR ".join(f"{column}app GLOB ?" for _ in visibility.apps)
        clauses.append(f"({matches})" if matches else "1 = 0")
        params += visibility.apps
    if not visibility.all_tenants:
        tenant = visibility.tenant or "" if blank_tenant else visibility.tenant
        clauses.append(f"{column}tenant IS NULL" if tenant is None else f"{column}tenant = ?")
        params += [] if tenant is None else [tenant]
    return (" AND ".join(clauses) or "1 = 1"), params


class TrailRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with transaction(self.conn) as conn:
            yield conn

    # -- interactions --------------------------------------------------------------------

    def insert_interactions(self, batch: Sequence[Interaction]) -> None:
        if not batch:
            return
        values = [rows.to_row(i) for i in batch]
        # where each lesson was recalled: (lesson, interaction, when, injected or held out)
        arms = [(i, arm, lessons) for i in batch for arm, lessons in ((1, i.injected), (0, i.shadow))]
        used = [(x, i.id, i.created_at, arm) for i, arm, ls in arms for x in {y.lesson_id for y in ls}]
        counts: dict[str, list[int]] = {}  # lesson -> [injected, held out]
        for lesson_id, _, _, arm in used:
            counts.setdefault(lesson_id, [0, 0])[0 if arm else 1] += 1
        with transaction(self.conn, exclusive=False) as conn:  # no fleet-wide lock: rows alone
            conn.executemany(rows.insert("interactions", values[0], or_ignore=True), values)
            conn.executemany(  # each lesson once, in one order in every writer: no deadlock between them
                "UPDATE lessons SET times_injected = times_injected + ?, times_held_out = times_held_out + ? "
                "WHERE id = ?",
                [(n[0], n[1], lesson_id) for lesson_id, n in sorted(counts.items())],
            )
            conn.executemany(INSERT_INJECTION, used)
            rollups.add_interactions(conn, batch)

    def get_interaction(self, interaction_id: str, visibility: Visibility = EVERYTHING) -> Fields | None:
        where, params = visible(visibility)
        row = self.conn.execute(
            f"SELECT * FROM interactions WHERE id = ? AND {where}", (interaction_id, *params)
        ).fetchone()
        return rows.decode(row) if row else None

    def interaction_with_feedback(
        self, interaction_id: str, visibility: Visibility = EVERYTHING
    ) -> Fields | None:
        found = self.get_interaction(interaction_id, visibility)
        if found is not None:
            found["feedback"] = self.feedback_for([interaction_id]).get(interaction_id, [])
        return found

    def list_sessions(
        self, limit: int = 50, app: str | None = None, visibility: Visibility = EVERYTHING
    ) -> list[Fields]:
        where, params = visible(visibility)
        if app:
            where += " AND app = ?"
            params.append(app)
        sql = (
            "SELECT session_id, min(app) AS app, min(user_id) AS user_id, count(*) AS turns, "
            "min(created_at) AS started_at, max(created_at) AS last_at "
            f"FROM interactions WHERE session_id IS NOT NULL AND {where} "
            "GROUP BY session_id ORDER BY last_at DESC LIMIT ?"
        )
        return [dict(r) for r in self.conn.execute(sql, (*params, limit))]

    def session_trail(self, session_id: str, visibility: Visibility = EVERYTHING) -> list[Fields]:
        where, params = visible(visibility)
        turns = [
            rows.decode(r)
            for r in self.conn.execute(
                f"SELECT * FROM interactions WHERE session_id = ? AND {where} ORDER BY created_at",
                (session_id, *params),
            )
        ]
        feedback = self.feedback_for([r["id"] for r in turns])
        for turn in turns:
            turn["feedback"] = feedback.get(turn["id"], [])
        return turns

    # -- feedback ------------------------------------------------------------------------

    def feedback_for(self, interaction_ids: Sequence[str]) -> dict[str, list[Fields]]:
        out: dict[str, list[Fields]] = {}
        for marks, chunk in rows.in_chunks(interaction_ids):
            for row in self.conn.execute(
                f"SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE interaction_id IN ({marks}) "
                "ORDER BY created_at",
                chunk,
            ):
                decoded = rows.decode(row)
                out.setdefault(decoded["interaction_id"], []).append(decoded)
        return out

    def insert_feedback(self, feedback: Feedback) -> None:
        row = rows.to_row(feedback)
        with self.transaction() as conn:
            if feedback.negative is not None:
                rollups.add_verdict(conn, feedback.interaction_id, feedback.negative)
            conn.execute(rows.insert("feedback", row), row)

    def count_effect(self, negative: bool, injected_ids: Sequence[str], shadow_ids: Sequence[str]) -> None:
        """Counters follow the arm: lessons injected into the judged turn count toward `*_after`,
        lessons that a control-arm turn would have received count toward `control_*`."""
        bumps = sorted(
            [(i, "negative_after" if negative else "positive_after") for i in set(injected_ids)]
            + [(i, "control_negative" if negative else "control_positive") for i in set(shadow_ids)]
        )  # rows locked in the order every writer locks them
        with self.transaction() as conn:
            for lesson_id, column in bumps:
                conn.execute(f"UPDATE lessons SET {column} = {column} + 1 WHERE id = ?", (lesson_id,))

    # -- lessons -------------------------------------------------------------------------

    def save_lesson(self, lesson: Lesson) -> None:
        """Insert a new lesson, or write what learning changed on an existing one."""
        row = rows.to_row(lesson, correction_key=correction_key(lesson.correction))
        updates = ", ".join(f"{c} = excluded.{c}" for c in LEARNED_COLUMNS)
        with self.transaction() as conn:
            conn.execute(f"{rows.insert('lessons', row)} ON CONFLICT (id) DO UPDATE SET {updates}", row)

    def _lessons(self, where: str, params: tuple[Any, ...]) -> list[Lesson]:
        found = self.conn.execute(f"SELECT {LESSON_COLUMNS} FROM lessons {where}", params)
        return rows.records(Lesson, found)

    def get_lesson(self, lesson_id: str, visibility: Visibility = EVERYTHING) -> Lesson | None:
        where, params = visible(visibility)
        found = self._lessons(f"WHERE id = ? AND {where}", (lesson_id, *params))
        return found[0] if found else None

    def lesson_for_interaction(self, interaction_id: str) -> Lesson | None:
        """The lesson drawn from the interaction (not one its question joined as a trigger: later
        feedback on that turn must not rewrite another user's lesson)."""
        found = self._lessons("WHERE interaction_id = ?", (interaction_id,))
        return found[0] if found else None

    def list_lessons(
        self,
        status: str | None = None,
        app: str | None = None,
        limit: int = 100,
        visibility: Visibility = EVERYTHING,
    ) -> list[Lesson]:
        where, params = visible(visibility)
        clauses = [where]
        if status:
            clauses.append("status = ?")
            params.append(status)
        if app:
            clauses.append("app = ?")
            params.append(app)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._lessons(f"{where} ORDER BY updated_at DESC LIMIT ?", (*params, limit))

    def judged_lessons(
        self, min_injections: int = 1, visibility: Visibility = EVERYTHING, limit: int = -1
    ) -> list[Lesson]:
        """Active lessons injected at least `min_injections` times, most injected first (at most
        `limit`; -1: all)."""
        where, params = visible(visibility)
        return self._lessons(
            f"WHERE status = 'active' AND times_injected >= ? AND {where} "
            "ORDER BY times_injected DESC LIMIT ?",
            (min_injections, *params, limit if limit >= 0 else 2**62),
        )

    def set_lesson_status(
        self,
        lesson_id: str,
        status: LessonStatus,
        note: str | None = None,
        *,
        by_person: bool = True,
        visibility: Visibility = EVERYTHING,
    ) -> Lesson | None:
        """A review (by a person) or an automatic change of status; the index sync follows.
        None when no lesson `visibility` allows has this id."""
        now = time.time()
        with self.transaction() as conn:
            if self.get_lesson(lesson_id, visibility) is None:
                return None
            conn.execute(
                "UPDATE lessons SET status = ?, review_note = coalesce(?, review_note), updated_at = ?, "
                "reviewed_at = CASE WHEN ? = 1 THEN ? ELSE reviewed_at END, version = version + 1 "
                "WHERE id = ?",
                (status, note, now, by_person, now, lesson_id),
            )
        return self.get_lesson(lesson_id)

    # -- the vector index follows these lessons ------------------------------------------

    def active_embeddings(self) -> list[tuple[str, str, str, bytes]]:
        """(id, app, tenant, embedding as stored: float32 bytes) of every embedded active lesson:
        what recall's cheap stage holds (one not embedded yet reaches it through the index sync).
        Bytes, not floats: 100k lessons as Python floats took 0.9 GB."""
        sql = (
            "SELECT id, app, coalesce(tenant, ''), embedding FROM lessons "
            "WHERE status = 'active' AND embedding IS NOT NULL"
        )
        return [(r[0], r[1], r[2], bytes(r[3])) for r in self.conn.execute(sql)]

    def set_embedding(self, lesson_id: str, vector: Sequence[float], model: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE lessons SET embedding = ?, embedding_model = ? WHERE id = ?",
                (rows.encode_vector(vector), model, lesson_id),
            )

    def counts(self) -> Fields:
        one = self.conn.execute(
            "SELECT (SELECT count(*) FROM interactions) AS interactions, "
            "(SELECT count(*) FROM feedback) AS feedback, "
            "(SELECT count(*) FROM lessons) AS lessons"
        ).fetchone()
        return dict(one)
