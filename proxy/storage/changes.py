"""Lesson changes in the order they committed (m010): what a vector index applies to follow the
DB. Every new lesson, new version and removal takes the next number; an index keeps the last
number it applied in `index_cursors` under its own id (each replica's embedded index, or one
shared server), so any number of replicas follow one database, and a restarted one goes on
from where it stopped."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.records import Lesson
from proxy.storage import rows
from proxy.storage.repo import LESSON_COLUMNS, TrailRepo


@dataclass(frozen=True)
class Change:
    seq: int
    lesson_id: str
    lesson: Lesson | None  # None: removed (erased, purged)
    vector: list[float] | None  # the stored embedding, when there is one


def after(repo: TrailRepo, seq: int, limit: int = 256) -> list[Change]:
    """The first `limit` changes numbered above `seq`, in order: each lesson as it is now (a
    lesson changed twice shows once, at its latest number)."""
    found = repo.conn.execute(
        f"SELECT {LESSON_COLUMNS}, embedding, changed_seq FROM lessons WHERE changed_seq > ? "
        "ORDER BY changed_seq LIMIT ?",
        (seq, limit),
    ).fetchall()
    changes = []
    for row in found:
        decoded = rows.decode(row)
        blob, number = decoded.pop("embedding"), decoded.pop("changed_seq")
        vector = rows.decode_vector(bytes(blob)) if blob else None
        changes.append(Change(int(number), decoded["id"], rows.to_record(Lesson, decoded), vector))
    removed = repo.conn.execute(
        "SELECT lesson_id, changed_seq FROM lesson_removals WHERE changed_seq > ? "
        "ORDER BY changed_seq LIMIT ?",
        (seq, limit),
    ).fetchall()
    changes += [Change(int(r[1]), r[0], None, None) for r in removed]
    # each list holds every change up to its own last: merged, the first `limit` are complete
    return sorted(changes, key=lambda c: c.seq)[:limit]


def latest(repo: TrailRepo) -> int:
    """The number of the latest change."""
    row = repo.conn.execute(
        "SELECT max(s) FROM (SELECT max(changed_seq) AS s FROM lessons "
        "UNION ALL SELECT max(changed_seq) AS s FROM lesson_removals) AS numbers"
    ).fetchone()
    return int(row[0] or 0)


def cursor(repo: TrailRepo, index_id: str) -> int:
    """The last change the index `index_id` applied (0: none, a new index)."""
    row = repo.conn.execute("SELECT seq FROM index_cursors WHERE index_id = ?", (index_id,)).fetchone()
    return int(row[0]) if row else 0


def advance(repo: TrailRepo, index_id: str, seq: int) -> None:
    """Note that `index_id` applied every change up to `seq` (never moving back: two replicas
    sharing one server index may both advance it)."""
    repo.conn.execute(
        "INSERT INTO index_cursors (index_id, seq) VALUES (?, ?) "
        "ON CONFLICT (index_id) DO UPDATE SET seq = max(index_cursors.seq, excluded.seq)"
        if repo.conn.dialect == "sqlite"
        else "INSERT INTO index_cursors (index_id, seq) VALUES (?, ?) "
        "ON CONFLICT (index_id) DO UPDATE SET seq = greatest(index_cursors.seq, excluded.seq)",
        (index_id, seq),
    )


def reset(repo: TrailRepo, index_id: str) -> None:
    """Start `index_id` over from the first change (its index is rebuilt from the DB)."""
    repo.conn.execute("DELETE FROM index_cursors WHERE index_id = ?", (index_id,))


def active_ids(repo: TrailRepo) -> set[str]:
    return {row[0] for row in repo.conn.execute("SELECT id FROM lessons WHERE status = 'active'")}


def active_applied(repo: TrailRepo, index_id: str) -> int:
    """How many active, embedded lessons an index that applied up to its cursor should hold."""
    row = repo.conn.execute(
        "SELECT count(*) FROM lessons WHERE status = 'active' AND changed_seq <= ?",
        (cursor(repo, index_id),),
    ).fetchone()
    return int(row[0])
