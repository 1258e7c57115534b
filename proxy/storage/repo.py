"""SQL for the trail, synchronous: the async TrailDB and the CLI both run these methods."""

from __future__ import annotations

import sqlite3
import time
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from typing import Any

import orjson

from proxy.records import Feedback, Interaction, Lesson, LessonStatus

Row = dict[str, Any]
JSON_COLUMNS = {
    "request_json": "request",
    "sent_messages_json": "sent_messages",
    "injected_json": "injected",
    "shadow_json": "shadow",
    "response_json": "response",
    "error_json": "error",
    "categories_json": "categories",
    "dimensions_json": "dimensions",
    "metadata_json": "metadata",
    "feedback_ids_json": "feedback_ids",
}
FEEDBACK_COLUMNS = (
    "id, interaction_id, created_at, source, user_id, user_role, rating, score, score_min, "
    "score_max, categories_json, comment, correction, dimensions_json, preferred_over, signal, "
    "metadata_json, lesson_id, negative"
)
LESSON_COLUMNS = (
    "id, created_at, updated_at, status, app, tenant, user_id, interaction_id, feedback_ids_json, "
    "question, bad_answer, categories_json, comment, correction, policy, version, times_injected, "
    "negative_after, positive_after, review_note, times_held_out, control_negative, control_positive, "
    "reviewed_at"
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _decode(row: sqlite3.Row) -> Row:
    out: Row = {}
    for key in row.keys():  # noqa: SIM118 - sqlite3.Row is not a mapping
        value = row[key]
        if key in JSON_COLUMNS:
            out[JSON_COLUMNS[key]] = orjson.loads(value) if value is not None else None
        else:
            out[key] = value
    return out


def encode_vector(vector: Sequence[float]) -> bytes:
    return array("f", vector).tobytes()


def decode_vector(blob: bytes) -> list[float]:
    values = array("f")
    values.frombytes(blob)
    return values.tolist()


def lesson_from_row(row: Row) -> Lesson:
    values = {f.name: row[f.name] for f in fields(Lesson)}
    values["feedback_ids"] = tuple(values["feedback_ids"])
    values["categories"] = tuple(values["categories"])
    return Lesson(**values)


class TrailRepo:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- interactions --------------------------------------------------------------------

    def insert_interactions(self, batch: Sequence[Interaction]) -> None:
        rows = [
            (
                i.id,
                i.created_at,
                i.session_id,
                i.user_id,
                i.user_role,
                i.app,
                i.tenant,
                i.requested_model,
                i.served_model,
                i.policy,
                i.policy_version,
                i.arm,
                int(i.stream),
                _dumps(i.request),
                _dumps(i.sent_messages),
                _dumps([asdict(x) for x in i.injected]),
                i.recall_status,
                i.recall_ms,
                i.recall_error,
                i.question,
                _dumps(i.response) if i.response is not None else None,
                i.response_text,
                i.finish_reason,
                i.prompt_tokens,
                i.completion_tokens,
                i.latency_ms,
                i.ttft_ms,
                i.overhead_ms,
                i.status,
                _dumps(i.error) if i.error is not None else None,
                _dumps([asdict(x) for x in i.shadow]),
            )
            for i in batch
        ]
        injected = [(lesson,) for i in batch for lesson in {x.lesson_id for x in i.injected}]
        held_out = [(lesson,) for i in batch for lesson in {x.lesson_id for x in i.shadow}]
        with self.transaction() as conn:
            conn.executemany(f"INSERT OR IGNORE INTO interactions VALUES ({','.join('?' * 31)})", rows)
            conn.executemany("UPDATE lessons SET times_injected = times_injected + 1 WHERE id = ?", injected)
            conn.executemany("UPDATE lessons SET times_held_out = times_held_out + 1 WHERE id = ?", held_out)

    def get_interaction(self, interaction_id: str) -> Row | None:
        row = self.conn.execute("SELECT * FROM interactions WHERE id = ?", (interaction_id,)).fetchone()
        return _decode(row) if row else None

    def interaction_with_feedback(self, interaction_id: str) -> Row | None:
        found = self.get_interaction(interaction_id)
        if found is not None:
            found["feedback"] = self.feedback_for([interaction_id]).get(interaction_id, [])
        return found

    def list_sessions(self, limit: int = 50, app: str | None = None) -> list[Row]:
        sql = (
            "SELECT session_id, min(app) AS app, min(user_id) AS user_id, count(*) AS turns, "
            "min(created_at) AS started_at, max(created_at) AS last_at "
            "FROM interactions WHERE session_id IS NOT NULL"
            + (" AND app = ?" if app else "")
            + " GROUP BY session_id ORDER BY last_at DESC LIMIT ?"
        )
        params: tuple[Any, ...] = (app, limit) if app else (limit,)
        return [dict(r) for r in self.conn.execute(sql, params)]

    def session_trail(self, session_id: str) -> list[Row]:
        rows = [
            _decode(r)
            for r in self.conn.execute(
                "SELECT * FROM interactions WHERE session_id = ? ORDER BY created_at", (session_id,)
            )
        ]
        feedback = self.feedback_for([r["id"] for r in rows])
        for row in rows:
            row["feedback"] = feedback.get(row["id"], [])
        return rows

    # -- feedback ------------------------------------------------------------------------

    def feedback_for(self, interaction_ids: Sequence[str]) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        for start in range(0, len(interaction_ids), 500):
            chunk = interaction_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(
                f"SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE interaction_id IN ({marks}) "
                "ORDER BY created_at",
                tuple(chunk),
            ):
                decoded = _decode(row)
                out.setdefault(decoded["interaction_id"], []).append(decoded)
        return out

    def record_feedback(
        self,
        feedback: Feedback,
        lesson: Lesson | None,
        embedding: tuple[bytes, str] | None,
        injected_ids: Sequence[str],
        negative: bool | None,
        shadow_ids: Sequence[str] = (),
    ) -> None:
        """Feedback, its lesson (new or merged) and the effect counters, in one commit.

        Counters follow the arm: lessons injected into the turn count toward `*_after`, lessons
        that a control-arm turn would have received count toward `control_*`.
        """
        with self.transaction() as conn:
            if lesson is not None:
                conn.execute(
                    f"INSERT INTO lessons ({LESSON_COLUMNS}, embedding, embedding_model) "
                    f"VALUES ({','.join('?' * 26)}) ON CONFLICT (id) DO UPDATE SET "
                    "updated_at = excluded.updated_at, status = excluded.status, "
                    "feedback_ids_json = excluded.feedback_ids_json, "
                    "categories_json = excluded.categories_json, comment = excluded.comment, "
                    "correction = excluded.correction, version = excluded.version, "
                    "embedding = coalesce(excluded.embedding, embedding), "
                    "embedding_model = coalesce(excluded.embedding_model, embedding_model)",
                    (
                        lesson.id,
                        lesson.created_at,
                        lesson.updated_at,
                        lesson.status,
                        lesson.app,
                        lesson.tenant,
                        lesson.user_id,
                        lesson.interaction_id,
                        _dumps(lesson.feedback_ids),
                        lesson.question,
                        lesson.bad_answer,
                        _dumps(lesson.categories),
                        lesson.comment,
                        lesson.correction,
                        lesson.policy,
                        lesson.version,
                        lesson.times_injected,
                        lesson.negative_after,
                        lesson.positive_after,
                        lesson.review_note,
                        lesson.times_held_out,
                        lesson.control_negative,
                        lesson.control_positive,
                        lesson.reviewed_at,
                        embedding[0] if embedding else None,
                        embedding[1] if embedding else None,
                    ),
                )
            f = feedback
            conn.execute(
                f"INSERT INTO feedback ({FEEDBACK_COLUMNS}) VALUES ({','.join('?' * 19)})",
                (
                    f.id,
                    f.interaction_id,
                    f.created_at,
                    f.source,
                    f.user_id,
                    f.user_role,
                    f.rating,
                    f.score,
                    f.score_min,
                    f.score_max,
                    _dumps(f.categories),
                    f.comment,
                    f.correction,
                    _dumps(f.dimensions),
                    f.preferred_over,
                    f.signal,
                    _dumps(f.metadata),
                    lesson.id if lesson else None,
                    None if negative is None else int(negative),
                ),
            )
            if negative is not None:
                for ids, column in (
                    (injected_ids, "negative_after" if negative else "positive_after"),
                    (shadow_ids, "control_negative" if negative else "control_positive"),
                ):
                    conn.executemany(
                        f"UPDATE lessons SET {column} = {column} + 1 WHERE id = ?", [(i,) for i in ids]
                    )

    # -- lessons -------------------------------------------------------------------------

    def _lessons(self, where: str, params: tuple[Any, ...]) -> list[Lesson]:
        sql = f"SELECT {LESSON_COLUMNS} FROM lessons {where}"
        return [lesson_from_row(_decode(r)) for r in self.conn.execute(sql, params)]

    def get_lesson(self, lesson_id: str) -> Lesson | None:
        found = self._lessons("WHERE id = ?", (lesson_id,))
        return found[0] if found else None

    def lesson_for_interaction(self, interaction_id: str) -> Lesson | None:
        found = self._lessons("WHERE interaction_id = ?", (interaction_id,))
        return found[0] if found else None

    def list_lessons(
        self, status: str | None = None, app: str | None = None, limit: int = 100
    ) -> list[Lesson]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if app:
            clauses.append("app = ?")
            params.append(app)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._lessons(f"{where} ORDER BY updated_at DESC LIMIT ?", (*params, limit))

    def set_lesson_status(
        self, lesson_id: str, status: LessonStatus, note: str | None = None, *, by_person: bool = True
    ) -> Lesson | None:
        """A review (by a person) or an automatic change of status; the index sync follows."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE lessons SET status = ?, review_note = coalesce(?, review_note), updated_at = ?, "
                "reviewed_at = CASE WHEN ? THEN ? ELSE reviewed_at END, version = version + 1 WHERE id = ?",
                (status, note, now, by_person, now, lesson_id),
            )
        return self.get_lesson(lesson_id)

    def lessons_to_index(self, limit: int = 256) -> list[tuple[Lesson, list[float] | None]]:
        """Lessons whose index entry is behind the DB (the index follows the system of record)."""
        rows = self.conn.execute(
            f"SELECT {LESSON_COLUMNS}, embedding FROM lessons WHERE indexed_version != version LIMIT ?",
            (limit,),
        ).fetchall()
        out = []
        for row in rows:
            decoded = _decode(row)
            blob = decoded.pop("embedding")
            out.append((lesson_from_row(decoded), decode_vector(blob) if blob else None))
        return out

    def mark_indexed(self, versions: Sequence[tuple[str, int]]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE lessons SET indexed_version = ? WHERE id = ? AND version = ?",
                [(version, lesson_id, version) for lesson_id, version in versions],
            )

    def indexed_active_count(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM lessons WHERE status = 'active' AND indexed_version = version"
        ).fetchone()
        return int(row[0])

    def forget_indexing(self) -> None:
        """Mark every lesson as not indexed, so the next sync rebuilds the index."""
        with self.transaction() as conn:
            conn.execute("UPDATE lessons SET indexed_version = 0")

    def set_embedding(self, lesson_id: str, vector: Sequence[float], model: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE lessons SET embedding = ?, embedding_model = ? WHERE id = ?",
                (encode_vector(vector), model, lesson_id),
            )

    def counts(self) -> Row:
        one = self.conn.execute(
            "SELECT (SELECT count(*) FROM interactions) AS interactions, "
            "(SELECT count(*) FROM feedback) AS feedback, "
            "(SELECT count(*) FROM lessons) AS lessons"
        ).fetchone()
        return dict(one)


def bump(lesson: Lesson, **changes: Any) -> Lesson:
    """A changed lesson with a new version, so the index sync picks it up."""
    return replace(lesson, version=lesson.version + 1, updated_at=time.time(), **changes)
