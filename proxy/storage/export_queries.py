"""The SQL behind `loopwise export`: corrected lessons and explicit preferences, with the
conversation each answered (the request as the client sent it, before any injection)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from proxy.storage.repo import TrailRepo


def corrections(
    repo: TrailRepo, reviewed_only: bool, app: str | None
) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many, rows) of active lessons with a correction; rows carry `messages` and `bad_answer`."""
    where = "l.status = 'active' AND l.correction != ''"
    params: list[Any] = []
    if reviewed_only:
        where += " AND l.reviewed_at IS NOT NULL"
    if app:
        where += " AND l.app = ?"
        params.append(app)
    count = repo.conn.execute(f"SELECT count(*) FROM lessons l WHERE {where}", params).fetchone()[0]
    rows = repo.conn.execute(
        f"SELECT l.id, l.app, l.correction, l.bad_answer, l.categories_json, i.request_json "
        f"FROM lessons l JOIN interactions i ON i.id = l.interaction_id WHERE {where} ORDER BY l.created_at",
        params,
    )

    def decoded() -> Iterator[dict[str, Any]]:
        for row in rows:
            request = orjson.loads(row["request_json"])
            yield {
                "lesson_id": row["id"],
                "app": row["app"],
                "messages": request.get("messages") or [],
                "correction": row["correction"],
                "bad_answer": row["bad_answer"],
                "categories": orjson.loads(row["categories_json"]),
            }

    return int(count), decoded()


def preferences(repo: TrailRepo, app: str | None) -> list[dict[str, Any]]:
    """Feedback saying one answer was preferred over another to the same conversation."""
    where, params = "f.preferred_over IS NOT NULL", []
    if app:
        where += " AND chosen.app = ?"
        params.append(app)
    rows = repo.conn.execute(
        "SELECT f.id, chosen.request_json, chosen.response_text AS chosen_text, "
        "rejected.response_text AS rejected_text FROM feedback f "
        "JOIN interactions chosen ON chosen.id = f.interaction_id "
        f"JOIN interactions rejected ON rejected.id = f.preferred_over WHERE {where} ORDER BY f.created_at",
        params,
    )
    return [
        {
            "feedback_id": row["id"],
            "messages": orjson.loads(row["request_json"]).get("messages") or [],
            "chosen": row["chosen_text"],
            "rejected": row["rejected_text"],
        }
        for row in rows
    ]
