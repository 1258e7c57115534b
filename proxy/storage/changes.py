"""Lesson changes in the order they committed (m010): what a vector index applies to follow the
DB. Every new lesson, new version and removal takes the next number; an index keeps the last
number it applied in `index_cursors` under its own id (each replica's embedded index, or one
shared server), so any number of replicas follow one database, and a restarted one goes on
from where it stopped."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.records import Lesson
from proxy.storage import rows, triggers
from proxy.storage.repo import LESSON_COLUMNS, TrailRepo
from proxy.storage.triggers import Trigger


@dataclass(frozen=True)
class Change:
    seq: int
    lesson_id: str
    lesson: Lesson | None  # None: removed (erased, purged)
    vector: list[float] | None  # the stored embedding, when there is one
    triggers: tuple[Trigger, ...] = ()  # its other questions (`storage/triggers`)


def after(repo: TrailRepo, seq: int, limit: int = 256) -> list[Change]:
    """The first `limit` changes numbered above `seq`, in order: each lesson as it is now (a
    lesson changed twice shows once, at its latest number)."""
    # one statement, so one snapshot: read apart, a lesson committed between the two reads
    # could be passed over for a removal numbered after it
    numbers = repo.conn.execute(
        "SELECT id, changed_seq, 1 FROM lessons WHERE changed_seq > ? "
        "UNION ALL SELECT lesson_id, changed_seq, 0 FROM lesson_removals WHERE changed_seq > ? "
        "ORDER BY 2 LIMIT ?",
        (seq, seq, limit),
    ).fetchall()
    present = [r[0] for r in numbers if r[2]]
    found: dict[str, tuple[Lesson, list[float] | None]] = {}
    for marks, chunk in rows.in_chunks(present):
        for row in repo.conn.execute(
            f"SELECT {LESSON_COLUMNS}, embedding FROM lessons WHERE id IN ({marks})", chunk
        ):
            decoded = rows.decode(row)
            blob = decoded.pop("embedding")
            found[decoded["id"]] = (
                rows.to_record(Lesson, decoded),
                rows.decode_vector(bytes(blob)) if blob else None,
            )
    more = triggers.of(repo.conn, list(found))
    changes = []
    for lesson_id, number, is_lesson in numbers:
        lesson, vector = found.get(lesson_id, (None, None)) if is_lesson else (None, None)
        held = tuple(more.get(lesson_id, ())) if lesson is not None else ()
        changes.append(Change(int(number), lesson_id, lesson, vector, held))  # gone meanwhile: a removal
    return changes


def cursor(repo: TrailRepo, index_id: str) -> int:
    """The last change the index `index_id` applied (0: none, a new index)."""
    row = repo.conn.execute("SELECT seq FROM index_cursors WHERE index_id = ?", (index_id,)).fetchone()
    return int(row[0]) if row else 0


def advance(repo: TrailRepo, index_id: str, seq: int) -> None:
    """Note that `index_id` applied every change up to `seq` (never moving back: two replicas
    sharing one server index may both advance it)."""
    repo.conn.execute(
        "INSERT INTO index_cursors (index_id, seq) VALUES (?, ?) ON CONFLICT (index_id) DO UPDATE SET "
        "seq = CASE WHEN excluded.seq > index_cursors.seq THEN excluded.seq ELSE index_cursors.seq END",
        (index_id, seq),
    )


def reset(repo: TrailRepo, index_id: str) -> None:
    """Start `index_id` over from the first change (its index is rebuilt from the DB)."""
    repo.conn.execute("DELETE FROM index_cursors WHERE index_id = ?", (index_id,))


def still_active(repo: TrailRepo, lesson_ids: list[str]) -> set[str]:
    """Which of `lesson_ids` are active now."""
    found: set[str] = set()
    for marks, chunk in rows.in_chunks(lesson_ids):
        sql = f"SELECT id FROM lessons WHERE status = 'active' AND id IN ({marks})"
        found |= {row[0] for row in repo.conn.execute(sql, chunk)}
    return found


def active_ids(repo: TrailRepo) -> set[str]:
    """The index points active lessons hold: their own, and their triggers'."""
    lessons = {row[0] for row in repo.conn.execute("SELECT id FROM lessons WHERE status = 'active'")}
    return lessons | triggers.active_point_ids(repo.conn)


def active_applied(repo: TrailRepo, index_id: str) -> int:
    """How many points (active lessons and their triggers) an index that applied up to its
    cursor should hold."""
    seq = cursor(repo, index_id)
    lessons = repo.conn.execute(
        "SELECT count(*) FROM lessons WHERE status = 'active' AND changed_seq <= ?", (seq,)
    ).fetchone()[0]
    held = repo.conn.execute(
        "SELECT count(*) FROM lesson_triggers t JOIN lessons l ON l.id = t.lesson_id "
        "WHERE l.status = 'active' AND l.changed_seq <= ?",
        (seq,),
    ).fetchone()[0]
    return int(lessons) + int(held)
