"""The latest interactions, sessions or not: what `GET /v1/interactions` lists."""

from __future__ import annotations

from proxy.records import EVERYTHING, Visibility
from proxy.storage.repo import TrailRepo, visible
from proxy.storage.rows import Fields

LISTED_COLUMNS = (
    "id", "created_at", "session_id", "user_id", "app", "endpoint", "requested_model", "served_model",
    "status", "question", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "attempts",
    "key_id",
)  # fmt: skip
FILTERS = {"app": "app", "user_id": "user_id", "session_id": "session_id", "endpoint": "endpoint",
           "status": "status", "model": "requested_model", "key_id": "key_id"}  # fmt: skip


def latest_interactions(
    repo: TrailRepo,
    limit: int = 50,
    filters: dict[str, str] | None = None,
    visibility: Visibility = EVERYTHING,
) -> list[Fields]:
    """A summary of each (no payloads), newest first; `filters` (names in FILTERS) match exactly."""
    where, params = visible(visibility)
    for name, value in (filters or {}).items():
        where += f" AND {FILTERS[name]} = ?"
        params.append(value)
    sql = (
        f"SELECT {', '.join(LISTED_COLUMNS)} FROM interactions WHERE {where} ORDER BY created_at DESC LIMIT ?"
    )
    return [dict(r) for r in repo.conn.execute(sql, (*params, limit))]
