"""Each session's latest request, in the DB (m010): what the implicit signals compare a new
request with when replicas share one database, so a session's turns may land on any of them.
The key is a digest of tenant, app, user and session (no user id in it); the question is read
from the trail (redacted as stored, and gone when the trail row is erased)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.storage.db import transaction
from proxy.storage.repo import TrailRepo

COLUMNS = ("interaction_id", "seen_at", "size", "whole", "asked", "regenerated")


def get(repo: TrailRepo, key: str, lock: bool = False) -> dict[str, Any] | None:
    """The session's latest request; `lock` (in a transaction): this session's row only, until
    the commit (SQLite's transaction holds the whole DB already)."""
    locking = " FOR UPDATE OF h" if lock and repo.conn.dialect == "postgresql" else ""
    row = repo.conn.execute(
        "SELECT h.interaction_id, h.seen_at, h.size, h.whole, h.asked, h.regenerated, "
        "coalesce(i.question, '') AS question FROM session_heads h "
        f"LEFT JOIN interactions i ON i.id = h.interaction_id WHERE h.key = ?{locking}",
        (key,),
    ).fetchone()
    if row is None:
        return None
    found = dict(zip((*COLUMNS, "question"), row, strict=True))
    found["whole"] = bytes(found["whole"])
    found["asked"] = bytes(found["asked"]) if found["asked"] is not None else None
    return found


def swap(repo: TrailRepo, key: str, follow: Callable[[dict[str, Any] | None], dict[str, Any]]) -> None:
    """Keep as the session's latest request what `follow` makes of the one before (read and
    written in one transaction: two requests of a session a moment apart each see the other)."""
    with transaction(repo.conn, exclusive=False):  # the session's row, not the fleet's write lock
        put(repo, key, follow(get(repo, key, lock=True)))


def put(repo: TrailRepo, key: str, head: dict[str, Any]) -> None:
    """Keep `head` as the session's latest request, unless one seen later is there already."""
    repo.conn.execute(
        f"INSERT INTO session_heads (key, {', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?) "
        f"ON CONFLICT (key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS)} "
        "WHERE excluded.seen_at >= session_heads.seen_at",
        (key, *(head[c] for c in COLUMNS)),
    )


def purge(repo: TrailRepo, before: float) -> int:
    """Forget sessions quiet since `before` (no signal reaches back that far)."""
    return int(repo.conn.execute("DELETE FROM session_heads WHERE seen_at < ?", (before,)).rowcount)
